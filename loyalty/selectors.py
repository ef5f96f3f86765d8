"""Reads of the program core: balances, ledger pages, tier progress and program KPIs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Min, QuerySet, Sum
from django.utils import timezone

from members.models import Member

from .models import LedgerEntry, Partner, PointsAccount, ProgramSettings, Purchase, Tier
from .services import rolling_figure


def account_for_member(*, member: Member) -> PointsAccount | None:
    return PointsAccount.objects.select_related("tier").filter(member=member).first()


def accounts_of_members(*, member_ids: Iterable[int]) -> dict[int, PointsAccount]:
    """These members' accounts with their tiers, by member id, in one query."""
    return {
        account.member_id: account
        for account in PointsAccount.objects.select_related("tier").filter(
            member_id__in=list(member_ids)
        )
    }


def member_balance(*, member: Member) -> int:
    account = PointsAccount.objects.filter(member=member).values_list("balance", flat=True)
    return account.first() or 0


def ledger_for_member(*, member: Member) -> QuerySet[LedgerEntry]:
    """The member's entries, newest first, with what a history page shows in one query."""
    return (
        LedgerEntry.objects.filter(account__member=member)
        .select_related("purchase__partner", "created_by")
        .order_by("-created_at", "-pk")
    )


@dataclass(frozen=True)
class TierProgress:
    basis: str
    figure: Decimal
    current: Tier | None
    next: Tier | None
    missing: Decimal
    percent: int
    kept_until: dt.datetime | None


def tier_progress(*, member: Member, at: dt.datetime | None = None) -> TierProgress:
    """Where the member stands: current tier, the next one, and how much is missing."""
    program = ProgramSettings.load()
    account = account_for_member(member=member)
    tiers = list(Tier.objects.order_by("rank"))
    figure = (
        rolling_figure(account=account, at=at or timezone.now(), basis=program.tier_basis)
        if account
        else Decimal("0")
    )
    current = account.tier if account else None
    current_rank = current.rank if current else -1
    higher = [tier for tier in tiers if tier.rank > current_rank]
    upcoming = higher[0] if higher else None
    if upcoming is None:
        return TierProgress(
            program.tier_basis,
            figure,
            current,
            None,
            Decimal("0"),
            100,
            account.tier_kept_until if account else None,
        )
    floor = current.threshold if current else Decimal("0")
    span = upcoming.threshold - floor
    missing = max(upcoming.threshold - figure, Decimal("0"))
    done = figure - floor
    percent = 100 if span <= 0 else int(max(Decimal(0), min(Decimal(100), done * 100 / span)))
    return TierProgress(
        program.tier_basis,
        figure,
        current,
        upcoming,
        missing,
        percent,
        account.tier_kept_until if account else None,
    )


def purchases_of(*, partner: Partner) -> QuerySet[Purchase]:
    """A partner's own purchases (the API shows a partner no other)."""
    return Purchase.objects.filter(partner=partner).select_related("member")


@dataclass(frozen=True)
class ExpiringPoints:
    points: int
    first_expiry: dt.datetime | None  # when the earliest of those lots expires


def local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The start of `day` and of the next day in the program's time zone."""
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start, end


def points_expiring_on(*, member_id: int, day: dt.date) -> int:
    """What remains of the member's lots that expire on `day` (program's time zone)."""
    start, end = local_day_bounds(day)
    total = LedgerEntry.objects.filter(
        account__member_id=member_id,
        remaining_points__gt=0,
        expires_at__gte=start,
        expires_at__lt=end,
    ).aggregate(points=Sum("remaining_points"))["points"]
    return total or 0


def points_expiring(
    *, member: Member, within: dt.timedelta, at: dt.datetime | None = None
) -> ExpiringPoints:
    """The points of the member's lots that expire within `within` from `at` (one query)."""
    at = at or timezone.now()
    lots = LedgerEntry.objects.filter(
        account__member=member,
        remaining_points__gt=0,
        expires_at__gt=at,
        expires_at__lte=at + within,
    ).aggregate(points=Sum("remaining_points"), first=Min("expires_at"))
    return ExpiringPoints(points=lots["points"] or 0, first_expiry=lots["first"])
