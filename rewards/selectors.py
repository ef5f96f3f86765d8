"""Reads of rewards: the member's catalogue, their redemptions, and reward performance."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.errors import ApplicationError
from loyalty.formats import points_text
from loyalty.models import ProgramSettings
from loyalty.selectors import account_for_member, member_balance
from members.models import Member, MemberStatus

from .errors import LimitReached, NotEligible, OutOfStock, RewardNotFound, RewardUnavailable
from .models import Redemption, RedemptionStatus, Reward


@dataclass(frozen=True)
class Standing:
    """What eligibility depends on for one member, read once for a whole catalogue."""

    tier_rank: int | None
    rule_segment_ids: frozenset[int]
    taken: dict[int, int]  # reward id -> redemptions not cancelled


def member_standing(*, member: Member, reward_ids: list[int] | None = None) -> Standing:
    """Three queries, whatever the number of rewards."""
    from segmentation.selectors import member_targeting_rule_segments

    account = account_for_member(member=member)
    taken = (
        Redemption.objects.filter(member=member)
        .exclude(status=RedemptionStatus.CANCELLED)
        .values("reward_id")
        .annotate(count=Count("pk"))
        .order_by()
    )
    if reward_ids is not None:
        taken = taken.filter(reward_id__in=reward_ids)
    return Standing(
        tier_rank=account.tier.rank if account and account.tier else None,
        # Segment-limited rewards target by profiling: none for a member who objects to it.
        rule_segment_ids=frozenset(
            segment.pk for segment in member_targeting_rule_segments(member=member)
        ),
        taken={row["reward_id"]: row["count"] for row in taken},
    )


def reward_refusal(
    *, member: Member, reward: Reward, standing: Standing, now: dt.datetime
) -> ApplicationError | None:
    """Why this member cannot redeem this reward now, or None (points are checked by the
    debit). `reward.segments` should be prefetched."""
    if (
        not reward.is_active
        or (reward.valid_from and now < reward.valid_from)
        or (reward.valid_until and now >= reward.valid_until)
    ):
        return RewardUnavailable()
    if member.status != MemberStatus.ACTIVE:
        return NotEligible()
    tier = reward.minimum_tier
    if tier is not None and (standing.tier_rank is None or standing.tier_rank < tier.rank):
        return NotEligible(_("This reward is for %(tier)s members and up.") % {"tier": tier})
    segment_ids = {segment.pk for segment in reward.segments.all()}
    if segment_ids and not segment_ids & standing.rule_segment_ids:
        return NotEligible()
    if (
        reward.limit_per_member is not None
        and standing.taken.get(reward.pk, 0) >= reward.limit_per_member
    ):
        return LimitReached()
    if reward.stock == 0:
        return OutOfStock()
    return None


def reward_check(*, member: Member, reward: Reward, now: dt.datetime | None = None) -> None:
    """Raise the reason this member cannot redeem this reward now (reads only; the
    redemption repeats it under the reward's lock)."""
    refusal = reward_refusal(
        member=member,
        reward=reward,
        standing=member_standing(member=member, reward_ids=[reward.pk]),
        now=now or timezone.now(),
    )
    if refusal is not None:
        raise refusal


@dataclass(frozen=True)
class CatalogueItem:
    reward: Reward
    can_redeem: bool
    reason: str  # why not, shown to the member ("" when it can be redeemed)
    points_missing: int
    # The member may redeem it once they have the points (only points stand in the way).
    eligible: bool = True


def catalogue_for(*, member: Member) -> list[CatalogueItem]:
    """Active rewards in their validity window, each with whether and why (not) this member
    can redeem it now; locked ones are shown as an incentive."""
    now = timezone.now()
    balance = member_balance(member=member)
    rewards = list(
        Reward.objects.filter(is_active=True)
        .exclude(valid_until__lte=now)
        .exclude(valid_from__gt=now)
        .select_related("minimum_tier", "partner")
        .prefetch_related("segments")
    )
    standing = member_standing(member=member, reward_ids=[reward.pk for reward in rewards])
    items = []
    for reward in rewards:
        refusal = reward_refusal(member=member, reward=reward, standing=standing, now=now)
        reason = str(refusal.message) if refusal is not None else ""
        missing = max(reward.points_cost - balance, 0)
        if not reason and missing:
            reason = _("You need %(points)s more %(points_name)s.") % {
                "points": points_text(missing),
                "points_name": ProgramSettings.load().points_label,
            }
        items.append(CatalogueItem(reward, not reason, reason, missing, refusal is None))
    return items


def redemptions_of(*, member: Member) -> QuerySet[Redemption]:
    return Redemption.objects.filter(member=member).select_related("reward", "reward__partner")


def rewards_active(*, now: dt.datetime | None = None) -> QuerySet[Reward]:
    """The public catalogue: active rewards in their validity window."""
    now = now or timezone.now()
    return (
        Reward.objects.filter(is_active=True)
        .exclude(valid_until__lte=now)
        .exclude(valid_from__gt=now)
        .select_related("minimum_tier", "partner")
    )


def reward_get(*, reward_id: int) -> Reward:
    """A reward by id, or RewardNotFound (naming the `reward` field)."""
    reward = Reward.objects.filter(pk=reward_id).first()
    if reward is None:
        raise RewardNotFound(field="reward")
    return reward


def redemptions_through(*, partner) -> QuerySet[Redemption]:
    """The redemptions a partner's API keys created (the API shows a partner only these)."""
    return Redemption.objects.filter(partner=partner).select_related("member", "reward")


@dataclass(frozen=True)
class PerformanceRow:
    month: dt.date
    partner: str
    redemptions: int
    points: int
    cost: Decimal


def reward_performance(*, months: int = 12) -> dict:
    """Redemptions, points spent and cost per month and supplying partner (not cancelled)."""
    since = timezone.localdate().replace(day=1) - relativedelta(months=months - 1)
    rows = [
        PerformanceRow(
            month=row["month"].date() if hasattr(row["month"], "date") else row["month"],
            partner=row["reward__partner__name"] or _("Program"),
            redemptions=row["redemptions"],
            points=row["points"] or 0,
            cost=row["cost"] or Decimal("0"),
        )
        for row in Redemption.objects.exclude(status=RedemptionStatus.CANCELLED)
        .filter(created_at__date__gte=since)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "reward__partner__name")
        .annotate(redemptions=Count("pk"), points=Sum("points"), cost=Sum("reward__cost_eur"))
        .order_by("month", "reward__partner__name")
    ]
    month_labels = [
        (since + relativedelta(months=offset)).strftime("%Y-%m") for offset in range(months)
    ]
    partners = sorted({row.partner for row in rows})
    points = {partner: [0] * months for partner in partners}
    for row in rows:
        index = month_labels.index(row.month.strftime("%Y-%m"))
        points[row.partner][index] += row.points
    totals = {
        partner: {
            "redemptions": sum(r.redemptions for r in rows if r.partner == partner),
            "points": sum(r.points for r in rows if r.partner == partner),
            "cost": sum((r.cost for r in rows if r.partner == partner), Decimal("0")),
        }
        for partner in partners
    }
    return {
        "since": since,  # the first day of the first month: whole calendar months to today
        "rows": rows,
        "totals": totals,
        "chart": {
            "months": month_labels,
            "series": [{"label": p, "points": points[p]} for p in partners],
        },
    }
