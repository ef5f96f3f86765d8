"""The program core: settings, partners, purchases, earning rules, tiers and the points ledger."""

from __future__ import annotations

import copy
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Round
from django.utils import timezone, translation
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import process_cache
from .formats import money_text, points_text
from .reasons import CAMPAIGN_BONUS, reason_render


def _day(moment) -> str:
    """'3 January 2026' / '3 januari 2026' in the program's time zone: for object names."""
    return date_format(timezone.localtime(moment), "DATE_FORMAT")


def _minute(moment) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _plain(number) -> str:
    """1.500 -> '1.5' / '1,5'; 10.00 -> '10': no trailing zeros, never an exponent."""
    return number_format(Decimal(format(Decimal(number).normalize(), "f")))


class TierBasis(models.TextChoices):
    SPEND = "spend", _("Rolling 12-month spend (EUR)")
    POINTS = "points", _("Rolling 12-month points earned")


class ProgramSettings(models.Model):
    """The program's one settings row (pk=1), edited by the program manager in the admin."""

    name = models.CharField(_("program name"), max_length=100, default="Loyalty")
    points_name = models.CharField(_("points name (Dutch)"), max_length=40, default="punten")
    points_name_en = models.CharField(_("points name (English)"), max_length=40, default="points")
    points_per_euro = models.DecimalField(
        _("points per euro"),
        max_digits=6,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    point_value_eur = models.DecimalField(
        _("value of one point in EUR"),
        max_digits=8,
        decimal_places=4,
        default=Decimal("0.0100"),
        help_text=_("Used for the outstanding points liability."),
        validators=[MinValueValidator(Decimal("0"))],
    )
    points_expiry_months = models.PositiveSmallIntegerField(
        _("points expire after (months)"),
        default=24,
        help_text=_("0 means points never expire."),
    )
    tier_basis = models.CharField(
        _("tiers are based on"), max_length=10, choices=TierBasis.choices, default=TierBasis.SPEND
    )
    tier_grace_months = models.PositiveSmallIntegerField(
        _("tier kept at least (months)"),
        default=12,
        help_text=_("A reached tier is kept this long before the nightly run may lower it."),
    )
    minimum_age = models.PositiveSmallIntegerField(_("minimum age"), default=16)
    excluded_domains = models.TextField(
        _("excluded e-mail domains"),
        blank=True,
        help_text=_("One domain per line, e.g. the staff domain. Subdomains are excluded too."),
    )
    primary_color = models.CharField(_("primary colour"), max_length=7, default="#0b5c4a")
    accent_color = models.CharField(_("accent colour"), max_length=7, default="#f2a900")
    logo = models.FileField(_("logo"), upload_to="branding/", blank=True)
    # Objectives (phase 1 of the method) that the KPI page measures against.
    target_active_members = models.PositiveIntegerField(_("target: active members"), default=1000)
    target_purchases_per_member = models.DecimalField(
        _("target: purchases per active member per year"),
        max_digits=6,
        decimal_places=2,
        default=Decimal("6.00"),
    )
    target_spend_per_member = models.DecimalField(
        _("target: spend per active member per year (EUR)"),
        default=Decimal("300.00"),
        max_digits=12,
        decimal_places=2,
    )
    target_redemption_rate = models.DecimalField(
        _("target: redemption rate (%)"), max_digits=5, decimal_places=2, default=Decimal("25.00")
    )

    class Meta:
        verbose_name = _("program settings")
        verbose_name_plural = _("program settings")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="program_settings_single")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        process_cache.changed()

    @classmethod
    def load(cls) -> ProgramSettings:
        """The settings row, kept in the process's memory (loyalty/process_cache.py): every
        purchase, page and e-mail reads it, and it changes a few times a year. Callers do not
        share the instance: each caller gets its own copy, which it may change and save."""
        return copy.copy(
            process_cache.cached("program-settings", lambda: cls.objects.get_or_create(pk=1)[0])
        )

    @property
    def points_label(self) -> str:
        """The points' name in the active language ("punten" / "points")."""
        if (translation.get_language() or "").startswith("en"):
            return self.points_name_en or self.points_name
        return self.points_name or self.points_name_en

    @property
    def excluded_domain_list(self) -> list[str]:
        return [
            line.strip().lower().lstrip("@")
            for line in self.excluded_domains.splitlines()
            if line.strip()
        ]


class PartnerKind(models.TextChoices):
    SHOP = "shop", _("Shop")
    WEBSHOP = "webshop", _("Web shop")
    POS = "pos", _("POS system")
    REWARD_SUPPLIER = "supplier", _("Reward supplier")
    CRM = "crm", _("CRM")


class Partner(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=PartnerKind.choices)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    api_requests_per_minute = models.PositiveIntegerField(
        _("API requests per minute"),
        default=1200,
        validators=[MinValueValidator(1)],
        help_text=_("Per API key; more get HTTP 429 with Retry-After."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Channel(models.TextChoices):
    STORE = "store", _("Store")
    WEBSHOP = "webshop", _("Web shop")
    APP = "app", _("App")
    PHONE = "phone", _("Phone")


class Tier(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)
    rank = models.PositiveSmallIntegerField(
        _("rank"), unique=True, help_text=_("Higher is better.")
    )
    threshold = models.DecimalField(
        _("threshold"),
        help_text=_("Rolling 12-month spend (EUR) or points, per program settings."),
        validators=[MinValueValidator(Decimal("0"))],
        max_digits=12,
        decimal_places=2,
    )
    multiplier = models.DecimalField(
        _("earning multiplier"),
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    color = models.CharField(_("colour"), max_length=7, default="#8c8c8c")

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["rank"]

    def __str__(self) -> str:
        return self.name


class PointsAccount(models.Model):
    """A member's cached balance and tier. The row is the lock for every ledger change."""

    member = models.OneToOneField(
        "members.Member",
        on_delete=models.CASCADE,
        related_name="points_account",
        verbose_name=_("member"),
    )
    balance = models.IntegerField(_("points balance"), default=0)
    tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="accounts",
        verbose_name=_("tier"),
    )
    tier_since = models.DateTimeField(_("tier since"), null=True, blank=True)
    tier_kept_until = models.DateTimeField(_("tier kept until"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="balance_never_negative"),
        ]

    def __str__(self) -> str:
        return gettext("Points account of %(member)s") % {"member": self.member}


class Purchase(models.Model):
    # No separate FK indexes on partner and member: the unique (partner, external_id) and the
    # (member, purchased_at) indexes lead with them, and every index costs at 10M purchases.
    partner = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        related_name="purchases",
        verbose_name=_("partner"),
        db_index=False,
    )
    external_id = models.CharField(_("partner's purchase id"), max_length=100)
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        related_name="purchases",
        db_index=False,
        verbose_name=_("member"),
    )
    amount = models.DecimalField(_("amount (EUR)"), max_digits=12, decimal_places=2)
    purchased_at = models.DateTimeField(_("purchased at"))
    channel = models.CharField(
        _("channel"), max_length=10, choices=Channel.choices, default=Channel.STORE
    )
    store = models.CharField(_("store"), max_length=100, blank=True)
    points_earned = models.IntegerField(_("points earned"), default=0)
    refunded_amount = models.DecimalField(
        _("refunded (EUR)"), default=Decimal("0"), max_digits=12, decimal_places=2
    )
    points_reversed = models.IntegerField(_("points reversed"), default=0)
    # Kept by the database for the segmentation aggregate, which reads it with the (member,
    # purchased_at) index alone: summing integers instead of numeric, and no heap access,
    # halve a run's aggregate over 10M purchases (docs/decisions.md).
    net_cents = models.GeneratedField(
        expression=Cast(
            Round((models.F("amount") - models.F("refunded_amount")) * 100),
            models.BigIntegerField(),
        ),
        output_field=models.BigIntegerField(),
        db_persist=True,
        verbose_name=_("net amount (cents)"),
    )
    earning_breakdown = models.JSONField(
        _("how the points were computed"), default=dict, blank=True
    )
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        ordering = ["-purchased_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "external_id"], name="purchase_unique_per_partner"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="purchase_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                name="purchase_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(points_reversed__lte=models.F("points_earned")),
                name="purchase_reversal_within_earned",
            ),
        ]
        indexes = [
            # Covering (PostgreSQL): the segmentation aggregate is an index-only scan.
            models.Index(
                fields=["member", "purchased_at"],
                include=["net_cents"],
                name="purchase_member_time_net",
            ),
            models.Index(fields=["purchased_at"]),
        ]

    def __str__(self) -> str:
        return gettext("Purchase %(id)s (%(partner)s)") % {
            "id": self.external_id,
            "partner": self.partner,
        }

    @property
    def net_amount(self) -> Decimal:
        return self.amount - self.refunded_amount


class PurchaseLine(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="lines")
    product_code = models.CharField(_("product code"), max_length=60, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    category = models.CharField(_("product category"), max_length=60, blank=True)
    quantity = models.DecimalField(
        _("quantity"), max_digits=10, decimal_places=3, default=Decimal("1")
    )
    amount = models.DecimalField(_("amount (EUR)"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("purchase line")
        verbose_name_plural = _("purchase lines")

    def __str__(self) -> str:
        return gettext("%(product)s, quantity %(quantity)s, %(amount)s") % {
            "product": self.category or self.description or self.product_code or "—",
            "quantity": _plain(self.quantity),
            "amount": money_text(self.amount),
        }


class Refund(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="refunds")
    external_id = models.CharField(_("partner's refund id"), max_length=100, blank=True)
    amount = models.DecimalField(_("amount (EUR)"), max_digits=12, decimal_places=2)
    points_reversed = models.IntegerField(_("points reversed"), default=0)
    points_not_recovered = models.IntegerField(
        _("points not recovered"),
        default=0,
        help_text=_("Points that should have been reversed but were already spent."),
    )
    points_expired = models.IntegerField(
        _("points already expired"),
        default=0,
        db_default=0,
        help_text=_(
            "Points of the purchase that had expired before the refund: nothing to reverse."
        ),
    )
    created_by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("refunded at"), default=timezone.now)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.UniqueConstraint(
                fields=["purchase", "external_id"],
                condition=~Q(external_id=""),
                name="refund_unique_external",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return gettext("Refund of %(amount)s on purchase %(id)s") % {
            "amount": money_text(self.amount),
            "id": self.purchase.external_id,
        }


class EarningRule(models.Model):
    """A multiplier on the base rate for purchases that match all of its conditions.

    Per purchase line the matching active rule with the highest priority applies (ties: the
    higher multiplier); a blank condition matches anything. The tier multiplier applies on top.
    """

    name = models.CharField(_("name"), max_length=100)
    multiplier = models.DecimalField(
        _("multiplier"),
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
    )
    tier = models.ForeignKey(
        Tier, on_delete=models.CASCADE, null=True, blank=True, verbose_name=_("only for tier")
    )
    channel = models.CharField(
        _("only for channel"), max_length=10, choices=Channel.choices, blank=True
    )
    product_category = models.CharField(_("only for product category"), max_length=60, blank=True)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    priority = models.IntegerField(
        _("priority"), default=0, help_text=_("The highest priority matching rule applies.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["-priority", "-multiplier", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gt=models.F("valid_from")),
                name="earning_rule_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(name)s (x%(multiplier)s)") % {
            "name": self.name,
            "multiplier": _plain(self.multiplier),
        }


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    REDEEM = "redeem", _("Redeemed")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", _("Adjusted")
    BONUS = "bonus", _("Bonus")
    REVERSAL = "reversal", _("Reversed")


class EntrySource(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    REFUND = "refund", _("Refund")
    REDEMPTION = "redemption", _("Redemption")
    CAMPAIGN = "campaign", _("Campaign")
    STAFF = "staff", _("Staff")
    SYSTEM = "system", _("System")


class LedgerEntry(models.Model):
    """One append-only change of a member's points.

    Credits (points > 0) are also lots: `remaining_points` is what is left of them after
    debits consumed them oldest first; expiry removes what remains of an expired lot. The
    entry's points, kind and reason never change.
    """

    # The (account, -created_at, -id) index serves this FK; refund and staff get partial ones.
    account = models.ForeignKey(
        PointsAccount,
        on_delete=models.PROTECT,
        related_name="entries",
        verbose_name=_("account"),
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=10, choices=EntryKind.choices)
    points = models.IntegerField(_("points"))
    balance_after = models.IntegerField(_("balance after"))
    # The text in the program's default language (exports, search); readers see reason_text.
    reason = models.CharField(_("reason"), max_length=255)
    # What the entry is: a msgid of loyalty.reasons and its parameters; empty for staff's text.
    reason_key = models.CharField(
        _("reason key"), max_length=100, blank=True, default="", db_default=""
    )
    reason_params = models.JSONField(_("reason parameters"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=12, choices=EntrySource.choices)
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
        verbose_name=_("purchase"),
    )
    refund = models.ForeignKey(
        Refund,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
        db_index=False,
        verbose_name=_("refund"),
    )
    created_by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    remaining_points = models.IntegerField(_("remaining in lot"), default=0)
    # What expiry took from this lot: a refund of its purchase does not take it back twice.
    expired_points = models.IntegerField(_("expired from lot"), default=0, db_default=0)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="entry_points_nonzero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="entry_balance_nonneg"),
            models.CheckConstraint(
                condition=Q(remaining_points__gte=0)
                & (
                    Q(points__lt=0, remaining_points=0)
                    | Q(remaining_points__lte=models.F("points"))
                ),
                name="entry_lot_within_points",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"]),
            models.Index(
                fields=["expires_at"],
                condition=Q(remaining_points__gt=0),
                name="open_lot_expiry_idx",
            ),
            models.Index(
                fields=["refund"], condition=Q(refund__isnull=False), name="entry_refund_idx"
            ),
            models.Index(
                fields=["created_by"],
                condition=Q(created_by__isnull=False),
                name="entry_created_by_idx",
            ),
            # The ledger list's order and the KPIs' entries since the last rollup: without it
            # the list sorted 8M rows per page view (issue 16).
            models.Index(fields=["-created_at", "-id"], name="entry_created_idx"),
            # A campaign's bonus points and their reversals (campaigns' results and cost).
            models.Index(
                KeyTransform("campaign_id", "reason_params"),
                condition=Q(reason_key=CAMPAIGN_BONUS),
                name="entry_campaign_bonus_idx",
            ),
        ]

    def __str__(self) -> str:
        sign = "+" if self.points > 0 else "-"
        return gettext("%(kind)s: %(points)s points on %(date)s") % {
            "kind": self.get_kind_display(),
            "points": sign + points_text(abs(self.points)),
            "date": _day(self.created_at),
        }

    @property
    def reason_text(self) -> str:
        """The reason in the reader's (active) language; staff's own text as typed."""
        return reason_render(self.reason_key, self.reason_params, fallback=self.reason)


class TierChange(models.Model):
    account = models.ForeignKey(
        PointsAccount,
        on_delete=models.CASCADE,
        related_name="tier_changes",
        verbose_name=_("points account"),
    )
    from_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("previous tier"),
    )
    to_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, related_name="+", verbose_name=_("tier")
    )
    figure = models.DecimalField(_("rolling 12-month figure"), max_digits=12, decimal_places=2)
    reason = models.CharField(_("reason"), max_length=100)
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return gettext("%(member)s: %(old)s → %(new)s on %(date)s") % {
            "member": self.account.member,
            "old": self.from_tier or gettext("no tier"),
            "new": self.to_tier or gettext("no tier"),
            "date": _day(self.changed_at),
        }


class BirthdayCredit(models.Model):
    """Birthday points given to a member for one year: the unique key that makes them once."""

    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    year = models.PositiveSmallIntegerField(_("year"))
    entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, related_name="+", verbose_name=_("ledger entry")
    )

    class Meta:
        verbose_name = _("birthday credit")
        verbose_name_plural = _("birthday credits")
        constraints = [
            models.UniqueConstraint(fields=["member", "year"], name="birthday_credit_once_a_year")
        ]

    def __str__(self) -> str:
        return gettext("Birthday points %(year)s: %(member)s") % {
            "year": self.year,
            "member": self.member,
        }


class ConsistencyCheck(models.Model):
    """The result of one comparison of every cached balance with its ledger sum."""

    ran_at = models.DateTimeField(_("ran at"), default=timezone.now)
    accounts_checked = models.PositiveIntegerField(_("accounts checked"))
    mismatches = models.JSONField(_("mismatches"), default=list, blank=True)

    class Meta:
        verbose_name = _("ledger consistency check")
        verbose_name_plural = _("ledger consistency checks")
        ordering = ["-ran_at"]

    def __str__(self) -> str:
        count = self.mismatch_count
        return ngettext(
            "Ledger check of %(date)s: %(count)s difference",
            "Ledger check of %(date)s: %(count)s differences",
            count,
        ) % {"date": _minute(self.ran_at), "count": points_text(count)}

    @property
    def mismatch_count(self) -> int:
        return len(self.mismatches)


# --- daily rollups of the KPI page (loyalty.kpis) ------------------------------------------


class KpiDay(models.Model):
    """One local day's figures of the KPI page, written by `kpis.kpi_rollup` (a periodic task).

    Additive figures (purchases, spend, points by kind, new members) sum over days. The two
    distinct-member counts are stated so that they sum too: the members whose first purchase
    of the day's month is on this day (a month's active members are the sum over its days) and
    the members whose latest purchase before the rollup's cut-off is on this day (the members
    active since a day are the sum over the days from it)."""

    day = models.DateField(_("day"), primary_key=True)
    purchases = models.PositiveIntegerField(_("purchases"), default=0)
    spend = models.DecimalField(_("spend (EUR)"), max_digits=14, decimal_places=2, default=0)
    month_first_buyers = models.PositiveIntegerField(_("first purchase of the month"), default=0)
    last_buyers = models.PositiveIntegerField(_("latest purchase"), default=0)
    points_issued = models.BigIntegerField(_("points issued"), default=0)
    points_redeemed = models.BigIntegerField(_("points redeemed"), default=0)
    points_expired = models.BigIntegerField(_("points expired"), default=0)
    new_members = models.PositiveIntegerField(_("new members"), default=0)

    class Meta:
        verbose_name = _("KPI day")
        verbose_name_plural = _("KPI days")
        ordering = ["day"]

    def __str__(self) -> str:
        return date_format(self.day, "DATE_FORMAT")


class KpiRollup(models.Model):
    """The one row saying up to which moment the `KpiDay` rows are complete."""

    complete_until = models.DateTimeField(_("complete until"))
    horizon = models.DateField(_("first day kept"))
    computed_at = models.DateTimeField(_("computed at"))
    # The ledger's sum before the cut-off: the liability is this plus the entries since.
    points_outstanding = models.BigIntegerField(_("points outstanding at the cut-off"))

    class Meta:
        verbose_name = _("KPI rollup")
        verbose_name_plural = _("KPI rollups")

    def __str__(self) -> str:
        return gettext("KPI rollup until %(date)s") % {"date": _minute(self.complete_until)}


# --- purchase and refund imports (admin upload, run by a worker) ---------------------------
from members.models import BackgroundImport  # noqa: E402


class PurchaseImport(BackgroundImport):
    """A partner's CSV or Excel file of purchases and refunds, recorded by a worker through
    `purchase_record` and `purchase_refund`: a re-upload creates nothing twice."""

    import_task = "loyalty.tasks.run_purchase_import"

    file = models.FileField(_("CSV or Excel file"), upload_to="imports/%Y/%m/")
    partner = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        related_name="purchase_imports",
        verbose_name=_("partner"),
        help_text=_("The partner whose purchase ids the file uses."),
    )
    replayed_rows = models.PositiveIntegerField(_("already there"), default=0)
    error_rows = models.PositiveIntegerField(_("rows refused"), default=0)

    class Meta(BackgroundImport.Meta):
        verbose_name = _("purchase import")
        verbose_name_plural = _("purchase imports")

    def __str__(self) -> str:
        return gettext("Purchase import of %(partner)s, %(date)s (%(status)s)") % {
            "partner": self.partner,
            "date": _minute(self.created_at),
            "status": self.get_status_display(),
        }
