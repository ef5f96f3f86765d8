"""Reads of campaigns: the audience of a campaign, its estimate, its progress and its results."""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple, dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone
from django.utils.translation import gettext

from loyalty import process_cache, reasons
from loyalty.formats import fraction_points_text, money_text
from loyalty.models import LedgerEntry, ProgramSettings
from members.models import ConsentChannel, Member
from members.selectors import consenting_member_ids_at_scale
from rewards.models import Redemption, RedemptionStatus
from segmentation.models import Segment
from segmentation.selectors import members_in_segments

from . import results
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
        segments=campaign.segments,
        quadrants=campaign.quadrants,
        rule_segment_ids=rule_ids,
        all_at_once=True,
    )
    excluded_rules = list(campaign.exclude_rule_segments.values_list("pk", flat=True))
    if campaign.exclude_segments or campaign.exclude_quadrants or excluded_rules:
        excluded = members_in_segments(
            segments=campaign.exclude_segments,
            quadrants=campaign.exclude_quadrants,
            rule_segment_ids=excluded_rules,
            all_at_once=True,
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
    members = members.filter(pk__in=consenting_member_ids_at_scale(channel=ConsentChannel.EMAIL))
    return members.alias(address=Lower("email")).exclude(address__in=suppressed_emails())


@dataclass(frozen=True)
class AudienceEstimate:
    members: int
    holdout: int
    mailed: int


def holdout_size(members: int, percent: int) -> int:
    """`percent` of `members`, rounded half up (the freeze statement computes the same in SQL,
    in integers: services.recipients_insert)."""
    return (members * percent + 50) // 100


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


# A sent campaign keeps its recipients' states (it finished with none waiting): counted once,
# then kept. Not a cancelled one: a worker may still record the message it was sending.
_FINAL_STATES = (CampaignStatus.SENT,)
_COUNTS_CACHE_KEY = "campaigns:state-counts:v1:{}:{}:{}"


def _counts_once(campaign: Campaign, name: str, count) -> dict:
    """`count()` now, or as kept for a campaign in a final state (a 500,000-recipient campaign
    took 0.3-0.9 s to count on every view of its page and of the list)."""
    if campaign.status not in _FINAL_STATES or campaign.started_at is None:
        return count()
    key = _COUNTS_CACHE_KEY.format(campaign.pk, campaign.started_at.timestamp(), name)
    return cache.get_or_set(key, count, RESULTS_CLOSED_SECONDS)


def campaign_progress(*, campaign: Campaign) -> Progress:
    """Recipients per state (one grouped query; COUNT(*) so that the (campaign, status) index
    answers it alone)."""

    def count() -> dict:
        return dict(
            Recipient.objects.filter(campaign=campaign)
            .values("status")
            .annotate(n=Count("*"))
            .order_by()
            .values_list("status", "n")
        )

    counts = _counts_once(campaign, "status", count)
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
    def count() -> dict:
        return dict(
            Recipient.objects.filter(campaign=campaign, status=RecipientStatus.SKIPPED)
            .values("skip_reason")
            .annotate(n=Count("*"))
            .order_by()
            .values_list("skip_reason", "n")
        )

    return _counts_once(campaign, "skipped", count)


def automations_with_sent(*, days: int = 30, now: dt.datetime | None = None) -> QuerySet:
    """Automations with `sent_recently`: messages their campaign sent in the last `days`."""
    since = (now or timezone.now()) - dt.timedelta(days=days)
    # A count per automation on the (campaign, status, sent_at) index: a join of every
    # recipient grouped by automation scanned all of them (2.4 s at 166,000).
    sent = (
        Recipient.objects.filter(
            campaign_id=OuterRef("campaign_id"),
            status=RecipientStatus.SENT,
            sent_at__gte=since,
        )
        .order_by()
        .values("campaign_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    return Automation.objects.annotate(sent_recently=Coalesce(Subquery(sent), 0))


def automation_triggers_on() -> frozenset[str]:
    """The triggers that have an automation on (its campaign sending). Every tier change and
    confirmed e-mail address asks, a batch of purchases hundreds of times: kept in each
    process's memory (loyalty/process_cache.py; saving or deleting an automation or a
    campaign calls `process_cache.changed`, see apps.py)."""
    return process_cache.cached(
        "campaigns:automation-triggers",
        lambda: frozenset(
            Automation.objects.filter(
                active=True, campaign__status=CampaignStatus.SENDING
            ).values_list("trigger", flat=True)
        ),
    )


def active_automations(*, trigger: str) -> QuerySet[Automation]:
    """The automations of `trigger` that are on (their campaign sending); no query when none
    of the trigger is on."""
    if trigger not in automation_triggers_on():
        return Automation.objects.none()
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


# --- results and uplift (docs/campaigns.md "Results and uplift") -----------------------------


@dataclass(frozen=True)
class Outcome:
    """What one group (mailed or holdout) did in the attribution window: members, members with a
    purchase (not wholly refunded), and their spend net of refunds, in cents, summed and
    squared-and-summed per member (members without a purchase count with 0)."""

    members: int = 0
    converted: int = 0
    spend_cents: int = 0
    spend_squares: int = 0

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            self.members + other.members,
            self.converted + other.converted,
            self.spend_cents + other.spend_cents,
            self.spend_squares + other.spend_squares,
        )

    @property
    def rate(self) -> float | None:
        return self.converted / self.members if self.members else None

    @property
    def revenue(self) -> Decimal:
        return Decimal(self.spend_cents) / 100

    @property
    def spend_per_member(self) -> Decimal | None:
        return (self.revenue / self.members).quantize(Decimal("0.01")) if self.members else None

    @property
    def moments(self) -> results.Moments:
        """In euros."""
        return results.Moments(self.members, self.spend_cents / 100, self.spend_squares / 10_000)


# Fewer members than this in a group (a segment's holdout of 4, say): no uplift, no verdict.
# The intervals are approximations that need a few members; a verdict from a handful misleads.
MIN_COMPARED = 10


@dataclass(frozen=True)
class ResultRow:
    """The figures of a campaign, or of one segment of it (the segment at send time)."""

    segment: str
    audience: int
    holdout: int
    sent: int
    failed: int
    skipped: int
    bounced: int
    opened: int
    clicked: int
    unsubscribed: int
    mailed: Outcome
    control: Outcome

    @property
    def segment_label(self) -> str:
        if not self.segment:
            return gettext("No segment")
        return str(dict(Segment.choices).get(self.segment, self.segment))

    @property
    def comparable(self) -> bool:
        return min(self.mailed.members, self.control.members) >= MIN_COMPARED

    @property
    def conversion_uplift(self) -> results.Interval | None:
        if not self.comparable:
            return None
        return results.proportion_difference(
            self.mailed.converted, self.mailed.members, self.control.converted, self.control.members
        )

    @property
    def spend_uplift(self) -> results.Interval | None:
        if not self.comparable:
            return None
        return results.mean_difference(self.mailed.moments, self.control.moments)

    @property
    def conversion_verdict(self) -> str:
        interval = self.conversion_uplift
        kind = results.verdict(interval)
        if interval is None or kind in (results.Verdict.TOO_FEW, results.Verdict.NO_EFFECT):
            return _verdict_text(kind)
        points = fraction_points_text(abs(interval.estimate) * 100, 1)
        if kind == results.Verdict.MORE:
            text = gettext(
                "Recipients converted %(points)s percentage points more often than the holdout."
            )
        else:
            text = gettext(
                "Recipients converted %(points)s percentage points less often than the holdout."
            )
        return text % {"points": points}

    @property
    def spend_verdict(self) -> str:
        interval = self.spend_uplift
        kind = results.verdict(interval)
        if interval is None or kind in (results.Verdict.TOO_FEW, results.Verdict.NO_EFFECT):
            return _verdict_text(kind)
        amount = money_text(abs(interval.estimate))
        if kind == results.Verdict.MORE:
            text = gettext("Recipients spent %(amount)s more per member than the holdout.")
        else:
            text = gettext("Recipients spent %(amount)s less per member than the holdout.")
        return text % {"amount": amount}


def _verdict_text(kind: results.Verdict) -> str:
    if kind == results.Verdict.TOO_FEW:
        return gettext("Too few members in a group to compare yet.")
    return gettext("No measurable effect yet.")


@dataclass(frozen=True)
class CampaignResults:
    total: ResultRow
    segments: list[ResultRow]
    attribution_days: int
    started_at: dt.datetime
    window_closes: dt.datetime  # for the last recipient mailed; until then the figures grow
    bonus_points: int
    bonus_cost: Decimal
    # Cumulative conversion rate (%) per day since the send, for the chart.
    chart: dict

    computed_at: dt.datetime | None = None

    @property
    def window_open(self) -> bool:
        return timezone.now() < self.window_closes

    @property
    def chart_data(self) -> dict:
        """The chart's series with its labels in the reader's language (results are cached
        for every reader: only numbers are stored)."""
        return {
            **self.chart,
            "labels": {
                "mailed": gettext("Recipients"),
                "holdout": gettext("Holdout"),
                "x": gettext("Days since the send"),
                "y": gettext("Converted (cumulative %)"),
            },
        }


def _sql_plus_days(vendor: str, column: str, days: int) -> str:
    if vendor == "postgresql":
        return f"({column} + make_interval(days => {int(days)}))"
    return f"(julianday({column}) + {int(days)})"


def _sql_time(vendor: str, column: str) -> str:
    return column if vendor == "postgresql" else f"julianday({column})"


def _sql_days_between(vendor: str, later: str, earlier: str) -> str:
    if vendor == "postgresql":
        return f"floor(extract(epoch from ({later} - {earlier})) / 86400)::int"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def _buyers_sql(vendor: str, days: int) -> str:
    """Per recipient who bought (mailed: status sent, from its sent_at; holdout: from the
    freeze) in [t0, t0 + window), purchases not wholly refunded: their net sum and the first
    one's day since t0, then counted, summed and squared-and-summed per group, segment and day.
    Members without a purchase add nothing to the sums; their number comes from the counts.
    The constant bounds (from the start to the last send + window) let the database read only
    the purchases of those days (the purchased_at index), whatever the history holds."""
    t0 = "CASE WHEN r.status = %s THEN %s ELSE r.sent_at END"
    at = _sql_time(vendor, "p.purchased_at")
    buyers = f"""
        SELECT r.status AS status, r.segment AS segment, SUM(p.net_cents) AS spend,
               {_sql_days_between(vendor, "MIN(p.purchased_at)", f"MIN({t0})")} AS day
        FROM campaigns_recipient r
        JOIN loyalty_purchase p
          ON p.member_id = r.member_id AND p.net_cents > 0
         AND p.purchased_at >= %s AND p.purchased_at < %s
         AND {at} >= {_sql_time(vendor, f"({t0})")}
         AND {at} < {_sql_plus_days(vendor, f"({t0})", days)}
        WHERE r.campaign_id = %s AND r.status IN (%s, %s)
        GROUP BY r.id, r.status, r.segment
    """
    return f"""SELECT status, segment, day, COUNT(*), SUM(spend), SUM(spend * spend)
               FROM ({buyers}) b GROUP BY status, segment, day"""


def campaign_results(*, campaign: Campaign) -> CampaignResults | None:
    """A campaign's results (None before sending started): per segment at send time and in
    total, recipients (status sent) against the holdout. Three queries besides the two settings
    rows: recipients per segment and state; the buyers' conversions and spend (count, sum, sum
    of squares per group, segment and day since the send, aggregated in SQL: the figures and
    the chart); and the bonus ledger."""
    if campaign.started_at is None:
        return None
    days = CampaignSettings.load().attribution_days
    counts = list(
        Recipient.objects.filter(campaign=campaign)
        .values("segment")
        .annotate(
            audience=Count("pk"),
            holdout=Count("pk", filter=Q(status=RecipientStatus.HOLDOUT)),
            sent=Count("pk", filter=Q(status=RecipientStatus.SENT)),
            failed=Count("pk", filter=Q(status=RecipientStatus.FAILED)),
            skipped=Count("pk", filter=Q(status=RecipientStatus.SKIPPED)),
            bounced=Count("pk", filter=Q(bounced_at__isnull=False)),
            opened=Count("pk", filter=Q(opened_at__isnull=False)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
            unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
            last_sent=Max("sent_at"),
        )
        .order_by()
    )
    last_sent = max(
        [campaign.started_at, *(row.pop("last_sent") or campaign.started_at for row in counts)]
    )
    window_closes = last_sent + dt.timedelta(days=days)
    adapt = connection.ops.adapt_datetimefield_value
    t0_params = [RecipientStatus.HOLDOUT, adapt(campaign.started_at)]
    params = [
        *t0_params,
        adapt(campaign.started_at),
        adapt(window_closes),
        *t0_params,
        *t0_params,
        campaign.pk,
        RecipientStatus.SENT,
        RecipientStatus.HOLDOUT,
    ]
    bought: dict[tuple[str, str], Outcome] = {}
    daily: dict[str, dict[int, int]] = {RecipientStatus.SENT: {}, RecipientStatus.HOLDOUT: {}}
    with connection.cursor() as cursor:
        cursor.execute(_buyers_sql(connection.vendor, days), params)
        for status, segment, day, n, spend, squares in cursor.fetchall():
            key = (status, segment)
            bought[key] = bought.get(key, Outcome()) + Outcome(0, n, int(spend), int(squares))
            daily[status][int(day)] = daily[status].get(int(day), 0) + n
    rows = []
    for row in counts:
        segment = row.pop("segment")
        mailed = bought.get((RecipientStatus.SENT, segment), Outcome())
        control = bought.get((RecipientStatus.HOLDOUT, segment), Outcome())
        rows.append(
            ResultRow(
                segment=segment,
                **row,
                mailed=Outcome(row["sent"], *astuple(mailed)[1:]),
                control=Outcome(row["holdout"], *astuple(control)[1:]),
            )
        )
    order = {key: index for index, key in enumerate(Segment.values)}
    rows.sort(key=lambda row: (order.get(row.segment, len(order)), row.segment))
    total = ResultRow(
        segment="",
        **{
            name: sum(getattr(row, name) for row in rows)
            for name in (
                "audience",
                "holdout",
                "sent",
                "failed",
                "skipped",
                "bounced",
                "opened",
                "clicked",
                "unsubscribed",
            )
        },
        mailed=sum((row.mailed for row in rows), Outcome()),
        control=sum((row.control for row in rows), Outcome()),
    )
    bonus = campaign_bonus_totals(campaign)
    return CampaignResults(
        total=total,
        segments=rows,
        attribution_days=days,
        started_at=campaign.started_at,
        window_closes=window_closes,
        bonus_points=bonus.points,
        bonus_cost=bonus.cost.quantize(Decimal("0.01")),
        chart=_cumulative_chart(days, daily, total, elapsed=timezone.now() - campaign.started_at),
        computed_at=timezone.now(),
    )


def _cumulative_chart(
    days: int, daily: dict[str, dict[int, int]], total: ResultRow, *, elapsed: dt.timedelta
) -> dict:
    """Day 1 is the first 24 hours after the send; days still to come have no value."""

    def series(counts: dict[int, int], members: int) -> list[float | None]:
        values: list[float | None] = []
        running = 0
        for day in range(days):
            running += counts.get(day, 0)
            future = day > elapsed.days
            values.append(None if future or not members else round(100 * running / members, 2))
        return values

    return {
        "days": [day + 1 for day in range(days)],
        "mailed": series(daily[RecipientStatus.SENT], total.mailed.members),
        "holdout": series(daily[RecipientStatus.HOLDOUT], total.control.members),
    }


# Results are read from the cache: at 500,000 recipients they take a few seconds to compute,
# and the comparison page shows 25 campaigns. The task `campaigns.tasks.results_refresh`
# recomputes, every 10 minutes, those whose attribution window is open; a page computes (and
# stores) what is missing. Figures of a closed window no longer change (refunds aside).
RESULTS_CACHE_KEY = "campaigns:results:v1:{}:{}"


def results_cache_key(campaign: Campaign) -> str:
    """Per campaign and start (an id reused after a rollback never reads another's figures)."""
    started = campaign.started_at.timestamp() if campaign.started_at else ""
    return RESULTS_CACHE_KEY.format(campaign.pk, started)


RESULTS_OPEN_SECONDS = 15 * 60
RESULTS_CLOSED_SECONDS = 7 * 24 * 3600


def campaign_results_store(*, campaign: Campaign) -> CampaignResults | None:
    """Compute the campaign's results and keep them for the pages."""
    report = campaign_results(campaign=campaign)
    if report is not None:
        seconds = RESULTS_OPEN_SECONDS if report.window_open else RESULTS_CLOSED_SECONDS
        cache.set(results_cache_key(campaign), report, seconds)
    return report


def campaign_results_cached(*, campaign: Campaign, compute: bool = True) -> CampaignResults | None:
    """The campaign's results as last computed (at most 15 minutes old while its window is
    open; `computed_at` says when), computed now when none are kept (unless not `compute`)."""
    if campaign.started_at is None:
        return None
    report = cache.get(results_cache_key(campaign))
    if report is None and compute:
        report = campaign_results_store(campaign=campaign)
    return report


# The comparison page: the newest campaigns that were started, at most this many.
COMPARED = 25


def compared_campaigns() -> list[Campaign]:
    return list(
        Campaign.objects.filter(started_at__isnull=False).order_by("-started_at", "-pk")[:COMPARED]
    )


def campaigns_with_open_results(now: dt.datetime) -> QuerySet[Campaign]:
    """Campaigns whose figures can still change: still sending (automations always are) or
    finished less than the attribution window (and a day) ago."""
    days = CampaignSettings.load().attribution_days
    return Campaign.objects.filter(started_at__isnull=False).filter(
        Q(finished_at__isnull=True) | Q(finished_at__gte=now - dt.timedelta(days=days + 1))
    )
