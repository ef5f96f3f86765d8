"""E-mail messages in house style, campaigns, their frozen recipients and the suppression list."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from segmentation.models import Segment

# The languages a message is written in, in the order the admin shows them.
MESSAGE_LANGUAGES = ("nl", "en")
MESSAGE_PARTS = ("subject", "preheader", "html", "text")


class Message(models.Model):
    """A marketing e-mail: subject, preheader, HTML body and plain-text part in Dutch and
    English. The parts are Django templates over the personalisation context
    (`campaigns.personalisation`); the HTML body is placed in the shared e-mail layout."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    subject_nl = models.CharField(_("subject (Dutch)"), max_length=200, blank=True)
    subject_en = models.CharField(_("subject (English)"), max_length=200, blank=True)
    preheader_nl = models.CharField(_("preheader (Dutch)"), max_length=200, blank=True)
    preheader_en = models.CharField(_("preheader (English)"), max_length=200, blank=True)
    html_nl = models.TextField(_("HTML body (Dutch)"), blank=True)
    html_en = models.TextField(_("HTML body (English)"), blank=True)
    text_nl = models.TextField(_("text part (Dutch)"), blank=True)
    text_en = models.TextField(_("text part (English)"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("e-mail message")
        verbose_name_plural = _("e-mail messages")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def part(self, part: str, language: str) -> str:
        return getattr(self, f"{part}_{language}")

    def is_complete_in(self, language: str) -> bool:
        """Subject, HTML body and text part written (the preheader is optional)."""
        return all(self.part(part, language).strip() for part in ("subject", "html", "text"))

    @property
    def languages(self) -> list[str]:
        return [language for language in MESSAGE_LANGUAGES if self.is_complete_in(language)]

    @property
    def missing_languages(self) -> list[str]:
        return [language for language in MESSAGE_LANGUAGES if not self.is_complete_in(language)]


class CampaignSettings(models.Model):
    """How campaigns are sent (one row, pk=1, edited in the admin)."""

    frequency_cap = models.PositiveSmallIntegerField(
        _("marketing e-mails per member per 7 days"),
        default=3,
        validators=[MinValueValidator(1)],
        help_text=_("A member who had this many in the last 7 days is skipped, with the reason."),
    )
    holdout_percent = models.PositiveSmallIntegerField(
        _("default holdout (%)"), default=10, validators=[MaxValueValidator(90)]
    )
    max_lateness_minutes = models.PositiveIntegerField(
        _("send late by at most (minutes)"),
        default=60,
        help_text=_(
            "A scheduled campaign whose time passed longer ago than this (e.g. the workers were "
            "down) waits for a person to confirm instead of being sent late."
        ),
    )
    messages_per_second = models.PositiveIntegerField(
        _("send rate (messages per second)"),
        default=0,
        help_text=_("0 means as fast as the workers can; set it for providers with limits."),
    )
    messages_per_hour = models.PositiveIntegerField(
        _("send rate (messages per hour)"),
        default=0,
        help_text=_(
            "0 means no hourly limit. Both rates hold for all workers together; when the hour's "
            "messages are sent, sending goes on in the next hour."
        ),
    )
    retry_backoff_seconds = models.PositiveIntegerField(
        _("first retry after (seconds)"),
        default=30,
        help_text=_(
            "After a temporary SMTP error; each further try waits twice as long (at most an "
            "hour), up to 6 tries."
        ),
    )
    batch_size = models.PositiveIntegerField(
        _("batch size"),
        default=200,
        validators=[MinValueValidator(1), MaxValueValidator(5000)],
        help_text=_("Recipients a worker claims and sends over one SMTP connection."),
    )
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"),
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_(
            "A recipient or holdout member who buys within this many days after the send "
            "counts as converted."
        ),
    )

    class Meta:
        verbose_name = _("campaign settings")
        verbose_name_plural = _("campaign settings")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="campaign_settings_single")]

    def __str__(self) -> str:
        return str(_("Campaign settings"))

    @classmethod
    def load(cls) -> CampaignSettings:
        row, _created = cls.objects.get_or_create(pk=1)
        return row


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")


class BonusKind(models.TextChoices):
    NONE = "none", _("No bonus")
    FIXED = "fixed", _("Fixed extra points")
    MULTIPLIER = "multiplier", _("Multiplier of the purchase's points")


class CampaignKind(models.TextChoices):
    ONE_OFF = "one_off", _("One-off campaign")
    AUTOMATION = "automation", _("Automation")


class Campaign(models.Model):
    """A one-off e-mail to an audience of segments, frozen into recipients when sending starts;
    or the sending side of an automation (kind `automation`): sending while it is on, one
    recipient per member and trigger occurrence."""

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(
        _("kind"),
        max_length=10,
        choices=CampaignKind.choices,
        default=CampaignKind.ONE_OFF,
        db_default=CampaignKind.ONE_OFF,
        editable=False,
    )
    message = models.ForeignKey(
        Message, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("message")
    )
    segments = models.JSONField(_("RFM segments"), default=list, blank=True)
    quadrants = models.JSONField(_("matrix quadrants"), default=list, blank=True)
    rule_segments = models.ManyToManyField(
        "segmentation.RuleSegment", blank=True, related_name="+", verbose_name=_("rule segments")
    )
    exclude_segments = models.JSONField(_("except RFM segments"), default=list, blank=True)
    exclude_quadrants = models.JSONField(_("except quadrants"), default=list, blank=True)
    exclude_rule_segments = models.ManyToManyField(
        "segmentation.RuleSegment",
        blank=True,
        related_name="+",
        verbose_name=_("except rule segments"),
    )
    exclude_redeemed_days = models.PositiveSmallIntegerField(
        _("except who redeemed in the last (days)"), null=True, blank=True
    )
    tiers = models.ManyToManyField(
        "loyalty.Tier",
        blank=True,
        related_name="+",
        verbose_name=_("tiers"),
        help_text=_("Only members on these tiers; none chosen means every tier."),
    )
    languages = models.JSONField(
        _("languages"),
        default=list,
        blank=True,
        help_text=_("Only members who read these languages; none chosen means every language."),
    )
    holdout_percent = models.PositiveSmallIntegerField(
        _("holdout (%)"),
        default=10,
        validators=[MaxValueValidator(90)],
        help_text=_("This share of the audience, drawn at random, receives nothing (for uplift)."),
    )
    holdout_seed = models.BigIntegerField(_("holdout seed"), null=True, blank=True, editable=False)
    # The bonus offer: extra points on the purchases of the members it was sent to, within
    # `bonus_days` after their own send time (docs/campaigns.md "Bonus offers").
    bonus_kind = models.CharField(
        _("bonus offer"), max_length=10, choices=BonusKind.choices, default=BonusKind.NONE
    )
    bonus_points = models.PositiveIntegerField(
        _("bonus points per purchase"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("For a fixed bonus: the extra points each purchase earns."),
    )
    bonus_multiplier = models.DecimalField(
        _("bonus multiplier"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "For a multiplier: 2.00 means the purchase's points once more, 1.50 half of them."
        ),
    )
    bonus_days = models.PositiveSmallIntegerField(
        _("bonus valid for (days)"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("Counted from the moment the member's e-mail was sent."),
    )
    bonus_min_amount = models.DecimalField(
        _("bonus from purchase amount (EUR)"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Optional: only purchases of at least this amount earn the bonus."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    scheduled_at = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    awaiting_confirmation = models.BooleanField(
        _("waits for confirmation"), default=False, editable=False
    )
    # Until when a send task is running or queued for this campaign (the scheduler kicks a
    # sending campaign only after it passed: a lost task is replaced, a queued one not doubled).
    dispatch_until = models.DateTimeField(
        _("send task due until"), null=True, blank=True, editable=False
    )
    # Batches in a row in which the mail server could not be used (refused, login refused):
    # at SERVER_FAILURES_BEFORE_FAILED (campaigns/sending.py) the campaign is failed.
    failed_batches = models.PositiveSmallIntegerField(
        _("failed batches in a row"), default=0, editable=False
    )
    started_at = models.DateTimeField(_("sending started"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-pk"]
        permissions = [("send_campaign", _("Can schedule, send, pause and cancel campaigns"))]
        indexes = [models.Index(fields=["status", "scheduled_at"])]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The bonus offer's values fit its kind (errors on their fields, in the admin form)."""
        super().clean()
        errors: dict[str, object] = {}
        if self.bonus_kind == BonusKind.FIXED and not self.bonus_points:
            errors["bonus_points"] = _("Enter the extra points of a fixed bonus.")
        if self.bonus_kind == BonusKind.MULTIPLIER:
            if self.bonus_multiplier is None:
                errors["bonus_multiplier"] = _("Enter the multiplier of the bonus.")
            elif self.bonus_multiplier <= 1:
                errors["bonus_multiplier"] = _(
                    "A multiplier above 1.00 gives extra points (2.00 doubles them)."
                )
        if self.bonus_kind == BonusKind.NONE and (
            self.bonus_points or self.bonus_multiplier is not None or self.bonus_min_amount
        ):
            errors["bonus_kind"] = _("Choose the kind of bonus, or clear its values.")
        if errors:
            raise ValidationError(errors)


class CampaignTransition(models.Model):
    """One change of a campaign's state, with who made it (None: the scheduler or a worker)."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="transitions", verbose_name=_("campaign")
    )
    from_status = models.CharField(_("from"), max_length=10, choices=CampaignStatus.choices)
    to_status = models.CharField(_("to"), max_length=10, choices=CampaignStatus.choices)
    by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("campaign state change")
        verbose_name_plural = _("campaign state changes")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_from_status_display()} → {self.get_to_status_display()}"


class RecipientStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    CLAIMED = "claimed", _("Claimed by a worker")
    SENDING = "sending", _("Handed to the mail server")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")
    HOLDOUT = "holdout", _("Holdout (not mailed)")


class SkipReason(models.TextChoices):
    FREQUENCY_CAP = "frequency_cap", _("Frequency cap reached")
    NO_CONSENT = "no_consent", _("E-mail consent withdrawn")
    SUPPRESSED = "suppressed", _("Address suppressed")
    INACTIVE = "inactive", _("Member no longer active")
    CANCELLED = "cancelled", _("Campaign cancelled")


class Recipient(models.Model):
    """One member of a campaign's frozen audience, with what they were when sending started,
    and the state of their one message (the claim/record protocol: docs/campaigns.md)."""

    # No database foreign keys (Django still cascades deletes) and no index of its own for the
    # campaign (the unique key below starts with it): a campaign's freeze writes 500,000 rows
    # in one statement, and the deferred key checks at its commit cost more than the INSERT
    # (one probe and row lock per row and key). The rows are written only from existing
    # members, for the campaign locked in the same transaction (docs/decisions.md).
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="recipients",
        verbose_name=_("campaign"),
        db_index=False,
        db_constraint=False,
    )
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("member"),
        db_index=False,
        db_constraint=False,
    )
    email = models.EmailField(_("e-mail address"))
    language = models.CharField(_("language"), max_length=2)
    segment = models.CharField(_("RFM segment"), max_length=20, blank=True)
    quadrant = models.CharField(_("quadrant"), max_length=20, blank=True)
    tier = models.CharField(_("tier"), max_length=50, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=RecipientStatus.choices, default=RecipientStatus.PENDING
    )
    skip_reason = models.CharField(
        _("skipped because"), max_length=20, choices=SkipReason.choices, blank=True
    )
    claimed_by = models.CharField(_("claimed by"), max_length=64, blank=True)
    claim_expires_at = models.DateTimeField(_("claim expires"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=200, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # Which occurrence of an automation's trigger this is (a birthday's year, a lot's expiry
    # date, a tier change, a segmentation run); blank for a one-off campaign.
    occurrence = models.CharField(
        _("occurrence"), max_length=40, blank=True, default="", db_default=""
    )
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked at"), null=True, blank=True)
    bounced_at = models.DateTimeField(_("bounced at"), null=True, blank=True)
    complained_at = models.DateTimeField(_("complained at"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("recipient")
        verbose_name_plural = _("recipients")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "member", "occurrence"], name="recipient_once_per_occurrence"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"]),
            # The frequency cap and the bonus offers: sent messages only, so a freeze does not
            # write an entry for each of its rows.
            models.Index(
                fields=["member", "sent_at"],
                condition=Q(sent_at__isnull=False),
                name="recipient_member_sent_idx",
            ),
            # An automation's messages of the last 30 days (its list), sent ones only.
            models.Index(
                fields=["campaign", "sent_at"],
                condition=Q(status="sent"),
                name="recipient_campaign_sent_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_status_display()})"


class LinkClick(models.Model):
    """The first click of a recipient on one link of their message (which links work); the
    recipient's `clicked_at` is their first click on any link."""

    recipient = models.ForeignKey(
        Recipient, on_delete=models.CASCADE, related_name="link_clicks", verbose_name=_("recipient")
    )
    url = models.CharField(_("link"), max_length=2000)
    at = models.DateTimeField(_("first clicked at"), default=timezone.now)

    class Meta:
        verbose_name = _("link click")
        verbose_name_plural = _("link clicks")
        constraints = [
            models.UniqueConstraint(fields=["recipient", "url"], name="link_click_once"),
        ]

    def __str__(self) -> str:
        return self.url


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    COMPLAINT = "complaint", _("Spam complaint")
    MANUAL = "manual", _("Added by staff")


class SuppressedAddress(models.Model):
    """An address that is never mailed a marketing message again."""

    email = models.EmailField(_("e-mail address"), max_length=254)
    reason = models.CharField(
        _("reason"),
        max_length=12,
        choices=SuppressionReason.choices,
        default=SuppressionReason.MANUAL,
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("added at"), default=timezone.now)

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppression list")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="suppressed_email_ci_unique",
                violation_error_message=_("This address is already on the suppression list."),
            ),
        ]

    def __str__(self) -> str:
        return self.email


class AutomationTrigger(models.TextChoices):
    WELCOME = "welcome", _("Welcome (e-mail address confirmed)")
    POINTS_EXPIRING = "points_expiring", _("Points expiring")
    TIER_REACHED = "tier_reached", _("Tier reached")
    TIER_LOWERED = "tier_lowered", _("Tier lowered")
    BIRTHDAY = "birthday", _("Birthday")
    SEGMENT_ENTRY = "segment_entry", _("Entered a segment")


class Automation(models.Model):
    """A lifecycle message sent when its trigger happens to a member (docs/campaigns.md,
    "Automations"). It owns a campaign of kind `automation`: each occurrence for a member is a
    recipient of that campaign, sent by the campaigns' pipeline with its consent, cap, holdout
    and exactly-once rules."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    trigger = models.CharField(_("trigger"), max_length=20, choices=AutomationTrigger.choices)
    active = models.BooleanField(_("on"), default=False, editable=False)
    message = models.ForeignKey(
        Message, on_delete=models.PROTECT, related_name="automations", verbose_name=_("message")
    )
    delay_hours = models.PositiveIntegerField(
        _("delay (hours)"),
        default=0,
        validators=[MaxValueValidator(24 * 60)],
        help_text=_("Send this long after the trigger; 0 sends at once."),
    )
    days_before_expiry = models.PositiveSmallIntegerField(
        _("days before the points expire"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("Points expiring only: how many days before the expiry date to send."),
    )
    segment = models.CharField(
        _("segment"),
        max_length=20,
        blank=True,
        choices=Segment.choices,
        help_text=_("Segment entry only: sent when a recalculation moves a member into it."),
    )
    tier = models.ForeignKey(
        "loyalty.Tier",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tier"),
        help_text=_("Tier reached or lowered only: just this tier (none chosen: any tier)."),
    )
    birthday_points = models.PositiveIntegerField(
        _("birthday points"),
        default=0,
        help_text=_("Birthday only: points every active member gets on their birthday (0: none)."),
    )
    holdout_percent = models.PositiveSmallIntegerField(
        _("holdout (%)"),
        default=10,
        validators=[MaxValueValidator(90)],
        help_text=_(
            "This share of the occurrences, drawn at random, receives nothing (for uplift)."
        ),
    )
    campaign = models.OneToOneField(
        Campaign,
        on_delete=models.PROTECT,
        related_name="automation",
        verbose_name=_("campaign"),
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("automation")
        verbose_name_plural = _("automations")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(trigger="points_expiring") | Q(days_before_expiry__isnull=False),
                name="automation_expiry_days_set",
            ),
            models.CheckConstraint(
                condition=~Q(trigger="segment_entry") | ~Q(segment=""),
                name="automation_segment_set",
            ),
        ]
        indexes = [models.Index(fields=["trigger", "active"])]

    def __str__(self) -> str:
        return self.name

    @property
    def delay(self) -> dt.timedelta:
        return dt.timedelta(hours=self.delay_hours)
