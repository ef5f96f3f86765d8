"""Reads of campaigns: the audience of a campaign, its estimate and its progress."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Lower
from django.utils import timezone

from loyalty import reasons
from loyalty.models import LedgerEntry, ProgramSettings
from members.models import ConsentChannel, Member
from members.selectors import consenting_member_ids
from rewards.models import Redemption, RedemptionStatus
from segmentation.selectors import members_in_segments

from .models import (
    Automation,
    Campaign,
    CampaignSettings,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    SuppressedAddress,
)

FREQUENCY_WINDOW = dt.timedelta(days=7)


def suppressed_emails() -> QuerySet:
    return SuppressedAddress.objects.annotate(address=Lower("email")).values("address")


def audience(*, campaign: Campaign) -> QuerySet[Member]:
    """The members the campaign would be sent to now, before the holdout and the frequency cap:
    active members in any of its segments, quadrants or rule segments (of the current run,
    without profiling objectors, as `members_in_segments` gives them), minus the exclusions,
    within its tier and language filters, with a current e-mail consent and an address that is
    not suppressed."""
    rule_ids = list(campaign.rule_segments.values_list("pk", flat=True))
    members = members_in_segments(
        segments=campaign.segments, quadrants=campaign.quadrants, rule_segment_ids=rule_ids
    )
    excluded_rules = list(campaign.exclude_rule_segments.values_list("pk", flat=True))
    if campaign.exclude_segments or campaign.exclude_quadrants or excluded_rules:
        excluded = members_in_segments(
            segments=campaign.exclude_segments,
            quadrants=campaign.exclude_quadrants,
            rule_segment_ids=excluded_rules,
        )
        members = members.exclude(pk__in=excluded.values("pk"))
    if campaign.exclude_redeemed_days:
        since = timezone.now() - dt.timedelta(days=campaign.exclude_redeemed_days)
        redeemed = (
            Redemption.objects.filter(created_at__gte=since)
            .exclude(status=RedemptionStatus.CANCELLED)
            .values("member_id")
        )
        members = members.exclude(pk__in=redeemed)
    tier_ids = list(campaign.tiers.values_list("pk", flat=True))
    if tier_ids:
        members = members.filter(points_account__tier_id__in=tier_ids)
    if campaign.languages:
        members = members.filter(language__in=campaign.languages)
    return mailable(members)


def mailable(members: QuerySet[Member]) -> QuerySet[Member]:
    """`members` with a current e-mail consent and an address that is not suppressed (the
    audience of a campaign and of each automation's occurrences)."""
    members = members.filter(pk__in=consenting_member_ids(channel=ConsentChannel.EMAIL))
    return members.alias(address=Lower("email")).exclude(address__in=suppressed_emails())


@dataclass(frozen=True)
class AudienceEstimate:
    members: int
    holdout: int
    mailed: int


def holdout_size(members: int, percent: int) -> int:
    return round(members * percent / 100)


def audience_estimate(*, campaign: Campaign) -> AudienceEstimate:
    """What the edit page shows: the audience now, its holdout and who would be mailed (before
    the frequency cap, which depends on what else is sent until then)."""
    members = audience(campaign=campaign).count()
    holdout = holdout_size(members, campaign.holdout_percent)
    return AudienceEstimate(members=members, holdout=holdout, mailed=members - holdout)


def capped_member_ids(
    *, now: dt.datetime | None = None, cap: int | None = None, among: QuerySet | None = None
) -> QuerySet:
    """Members who were sent `cap` marketing e-mails (any campaign) in the last 7 days (only
    those `among` these member ids, if given: an automation's new recipients)."""
    now = now or timezone.now()
    cap = cap if cap is not None else CampaignSettings.load().frequency_cap
    sent = Recipient.objects.filter(status=RecipientStatus.SENT, sent_at__gt=now - FREQUENCY_WINDOW)
    if among is not None:
        sent = sent.filter(member_id__in=among)
    return (
        sent.values("member_id")
        .annotate(sent=Count("pk"))
        .filter(sent__gte=cap)
        .values("member_id")
    )


@dataclass(frozen=True)
class Progress:
    audience: int
    holdout: int
    skipped: int
    to_send: int  # recipients to be mailed: sent + failed + still waiting
    sent: int
    failed: int
    waiting: int

    @property
    def percent(self) -> int:
        if not self.to_send:
            return 100 if self.audience else 0
        return int(100 * (self.sent + self.failed) / self.to_send)


def campaign_progress(*, campaign: Campaign) -> Progress:
    """Recipients per state (one grouped query)."""
    counts = dict(
        Recipient.objects.filter(campaign=campaign)
        .values("status")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("status", "n")
    )
    sent = counts.get(RecipientStatus.SENT, 0)
    failed = counts.get(RecipientStatus.FAILED, 0)
    waiting = sum(
        counts.get(status, 0)
        for status in (RecipientStatus.PENDING, RecipientStatus.CLAIMED, RecipientStatus.SENDING)
    )
    holdout = counts.get(RecipientStatus.HOLDOUT, 0)
    skipped = counts.get(RecipientStatus.SKIPPED, 0)
    return Progress(
        audience=sum(counts.values()),
        holdout=holdout,
        skipped=skipped,
        to_send=sent + failed + waiting,
        sent=sent,
        failed=failed,
        waiting=waiting,
    )


def skip_reasons(*, campaign: Campaign) -> dict[str, int]:
    return dict(
        Recipient.objects.filter(campaign=campaign, status=RecipientStatus.SKIPPED)
        .values("skip_reason")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("skip_reason", "n")
    )


def automations_with_sent(*, days: int = 30, now: dt.datetime | None = None) -> QuerySet:
    """Automations with `sent_recently`: messages their campaign sent in the last `days`."""
    since = (now or timezone.now()) - dt.timedelta(days=days)
    return Automation.objects.annotate(
        sent_recently=Count(
            "campaign__recipients",
            filter=Q(
                campaign__recipients__status=RecipientStatus.SENT,
                campaign__recipients__sent_at__gte=since,
            ),
        )
    )


def active_automations(*, trigger: str) -> QuerySet[Automation]:
    """The automations of `trigger` that are on (their campaign sending)."""
    return Automation.objects.filter(
        trigger=trigger, active=True, campaign__status=CampaignStatus.SENDING
    ).select_related("campaign")


def campaigns_due(*, now: dt.datetime | None = None) -> QuerySet[Campaign]:
    return Campaign.objects.filter(
        status=CampaignStatus.SCHEDULED, scheduled_at__lte=now or timezone.now()
    ).order_by("scheduled_at", "pk")


@dataclass(frozen=True)
class BonusTotals:
    points: int  # awarded, net of what refunds took back
    cost: Decimal  # in euros, at the program's value of a point (not rounded)


def campaign_bonus_totals(campaign: Campaign) -> BonusTotals:
    """The bonus points the campaign's offer gave (its bonus entries, less their reversals by
    refunds) and what they cost; one query on the ledger's partial index of bonus entries."""
    points = (
        LedgerEntry.objects.filter(
            reason_key=reasons.CAMPAIGN_BONUS, reason_params__campaign_id=campaign.pk
        ).aggregate(total=Sum("points"))["total"]
        or 0
    )
    return BonusTotals(points=points, cost=points * ProgramSettings.load().point_value_eur)
