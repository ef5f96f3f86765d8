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

from loyalty.selectors import member_balance
from members.models import Member

from .models import Redemption, RedemptionStatus, Reward
from .services import member_standing, reward_refusal


@dataclass(frozen=True)
class CatalogueItem:
    reward: Reward
    can_redeem: bool
    reason: str  # why not, shown to the member ("" when it can be redeemed)
    points_missing: int


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
            reason = _("You need %(points)d more points.") % {"points": missing}
        items.append(CatalogueItem(reward, not reason, reason, missing))
    return items


def redemptions_of(*, member: Member) -> QuerySet[Redemption]:
    return Redemption.objects.filter(member=member).select_related("reward", "reward__partner")


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
        "rows": rows,
        "totals": totals,
        "chart": {
            "months": month_labels,
            "series": [{"label": p, "points": points[p]} for p in partners],
        },
    }
