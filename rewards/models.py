"""The benefit package: rewards, their voucher codes, and members' redemptions."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.models import BackgroundImport

from . import codes


class RewardKind(models.TextChoices):
    VOUCHER = "voucher", _("Voucher code")
    PRODUCT = "product", _("Product delivered by a partner")
    DISCOUNT = "discount", _("Points to discount")


class Reward(models.Model):
    """Something members buy with points. Stock and codes are claimed in the redemption's
    transaction; an empty stock means unlimited."""

    name_nl = models.CharField(_("name (Dutch)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    description_nl = models.TextField(_("description (Dutch)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    image = models.ImageField(_("image"), upload_to="rewards/", blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=RewardKind.choices)
    partner = models.ForeignKey(
        "loyalty.Partner",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rewards",
        verbose_name=_("supplying partner"),
    )
    points_cost = models.PositiveIntegerField(_("points"), validators=[MinValueValidator(1)])
    cost_eur = models.DecimalField(
        _("cost to the program (EUR)"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    stock = models.PositiveIntegerField(
        _("stock"), null=True, blank=True, help_text=_("Empty: unlimited.")
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    limit_per_member = models.PositiveSmallIntegerField(
        _("limit per member"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    minimum_tier = models.ForeignKey(
        "loyalty.Tier",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("minimum tier"),
    )
    segments = models.ManyToManyField(
        "segmentation.RuleSegment",
        blank=True,
        related_name="rewards",
        verbose_name=_("only for these segments"),
        help_text=_("Empty: every member. Otherwise members in at least one of them."),
    )
    voucher_valid_days = models.PositiveSmallIntegerField(
        _("voucher valid for (days)"), default=90, validators=[MinValueValidator(1)]
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        ordering = ["points_cost", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True)
                | Q(valid_from__isnull=True)
                | Q(valid_until__gt=models.F("valid_from")),
                name="reward_validity_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_en if translation.get_language() == "en" else self.name_nl

    @property
    def description(self) -> str:
        return self.description_en if translation.get_language() == "en" else self.description_nl


class CodeStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    ISSUED = "issued", _("Issued")
    USED = "used", _("Used")
    # Shown to a member whose redemption was cancelled: never issued again, refused at the till.
    VOID = "void", _("Void (redemption cancelled)")


class VoucherCode(models.Model):
    """One code of a reward's pool; handed out once (a redemption claims it under a lock)."""

    reward = models.ForeignKey(
        Reward, on_delete=models.CASCADE, related_name="codes", verbose_name=_("reward")
    )
    code = models.CharField(_("code"), max_length=40)
    status = models.CharField(
        _("status"), max_length=10, choices=CodeStatus.choices, default=CodeStatus.AVAILABLE
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("voucher code")
        verbose_name_plural = _("voucher codes")
        constraints = [models.UniqueConstraint(fields=["code"], name="voucher_code_unique")]
        indexes = [models.Index(fields=["reward", "status"])]

    def __str__(self) -> str:
        shown = codes.display(self.code) if codes.is_well_formed(self.code) else self.code
        return gettext("Voucher code %(code)s") % {"code": shown}


class RedemptionStatus(models.TextChoices):
    ISSUED = "issued", _("Issued")  # vouchers and discounts
    REQUESTED = "requested", _("Requested")  # products, until the partner delivers
    FULFILLED = "fulfilled", _("Fulfilled")
    USED = "used", _("Used")
    CANCELLED = "cancelled", _("Cancelled")


class Redemption(models.Model):
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        related_name="redemptions",
        verbose_name=_("member"),
    )
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("reward")
    )
    points = models.PositiveIntegerField(_("points"))
    status = models.CharField(_("status"), max_length=10, choices=RedemptionStatus.choices)
    voucher = models.OneToOneField(
        VoucherCode,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="redemption",
        verbose_name=_("voucher code"),
    )
    # The code as handed out (kept, and voided, when the redemption is cancelled).
    code = models.CharField(_("code"), max_length=40, blank=True)
    ledger_entry = models.ForeignKey(
        "loyalty.LedgerEntry",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        verbose_name=_("ledger entry"),
    )
    refund_entry = models.ForeignKey(
        "loyalty.LedgerEntry",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("points returned in"),
    )
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    created_at = models.DateTimeField(_("redeemed at"), default=timezone.now)
    changed_at = models.DateTimeField(_("status changed at"), null=True, blank=True)
    changed_by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("status changed by"),
    )
    # The partner whose API key created it (None: the portal or the admin). Only that partner
    # sees and cancels it through the API.
    partner = models.ForeignKey(
        "loyalty.Partner",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("redeemed through partner"),
    )

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["member", "reward", "status"]),
            models.Index(fields=["reward", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.reward} — {self.member}"

    @property
    def is_issued(self) -> bool:
        return self.status == RedemptionStatus.ISSUED

    @property
    def is_requested(self) -> bool:
        return self.status == RedemptionStatus.REQUESTED

    @property
    def is_cancelled(self) -> bool:
        return self.status == RedemptionStatus.CANCELLED


class VoucherImport(BackgroundImport):
    """A partner's CSV of voucher codes for one reward, imported by a worker."""

    import_task = "rewards.tasks.run_voucher_import"

    reward = models.ForeignKey(
        Reward, on_delete=models.CASCADE, related_name="imports", verbose_name=_("reward")
    )

    class Meta(BackgroundImport.Meta):
        verbose_name = _("voucher code import")
        verbose_name_plural = _("voucher code imports")

    def __str__(self) -> str:
        return gettext("Code import for %(reward)s of %(date)s (%(status)s)") % {
            "reward": self.reward,
            "date": date_format(timezone.localtime(self.created_at), "DATETIME_FORMAT"),
            "status": self.get_status_display(),
        }
