"""The program's KPIs against its objectives (phase 1 of the method), for the admin page.

Pure reads, aggregated in the database: a fixed number of queries whatever the data size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, MemberStatus

from .models import EntryKind, LedgerEntry, PointsAccount, ProgramSettings, Purchase

ISSUED_KINDS = (EntryKind.EARN, EntryKind.BONUS)


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: Decimal | int
    target: Decimal | int | None
    unit: str  # "", "eur", "pct"
    higher_is_better: bool = True

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


@dataclass(frozen=True)
class KpiReport:
    since: dt.datetime
    until: dt.datetime
    kpis: list[Kpi]
    months: list[str]
    points_issued: list[int]
    points_redeemed: list[int]
    points_expired: list[int]
    active_members: list[int]
    spend: list[float]
    new_members: list[int]
    member_count: int


def _months(until: dt.datetime, count: int = 12) -> list[dt.date]:
    local = timezone.localtime(until).date().replace(day=1)
    return [local - relativedelta(months=offset) for offset in range(count - 1, -1, -1)]


def _month_key(value) -> str:
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date()
    return value.strftime("%Y-%m")


def program_kpis(*, now: dt.datetime | None = None) -> KpiReport:
    now = now or timezone.now()
    since = now - relativedelta(months=12)
    program = ProgramSettings.load()
    months = _months(now)
    first_month = timezone.make_aware(dt.datetime.combine(months[0], dt.time.min))

    purchases = Purchase.objects.filter(purchased_at__gt=since, purchased_at__lte=now)
    totals = purchases.aggregate(
        active=Count("member", distinct=True),
        count=Count("pk"),
        spend=Coalesce(Sum(F("amount") - F("refunded_amount")), Decimal("0")),
    )
    ledger = LedgerEntry.objects.filter(created_at__gt=since, created_at__lte=now).aggregate(
        issued=Coalesce(Sum("points", filter=Q(kind__in=ISSUED_KINDS)), 0),
        redeemed=Coalesce(Sum("points", filter=Q(kind=EntryKind.REDEEM)), 0),
        expired=Coalesce(Sum("points", filter=Q(kind=EntryKind.EXPIRE)), 0),
    )
    outstanding = PointsAccount.objects.aggregate(total=Coalesce(Sum("balance"), 0))["total"]
    member_count = Member.objects.filter(status=MemberStatus.ACTIVE).count()

    active = totals["active"]
    issued, redeemed = ledger["issued"], -ledger["redeemed"]
    per_member = Decimal(totals["count"]) / active if active else Decimal("0")
    spend_per_member = totals["spend"] / active if active else Decimal("0")
    redemption_rate = Decimal(redeemed) * 100 / issued if issued else Decimal("0")
    liability = (Decimal(outstanding) * program.point_value_eur).quantize(Decimal("0.01"))

    kpis = [
        Kpi(
            "active_members",
            str(_("Active members (purchase in 12 months)")),
            active,
            program.target_active_members,
            "",
        ),
        Kpi(
            "purchases_per_member",
            str(_("Purchases per active member")),
            per_member.quantize(Decimal("0.01")),
            program.target_purchases_per_member,
            "",
        ),
        Kpi(
            "spend_per_member",
            str(_("Spend per active member")),
            spend_per_member.quantize(Decimal("0.01")),
            program.target_spend_per_member,
            "eur",
        ),
        Kpi(
            "redemption_rate",
            str(_("Redemption rate (redeemed / issued)")),
            redemption_rate.quantize(Decimal("0.1")),
            program.target_redemption_rate,
            "pct",
        ),
        Kpi("points_issued", str(_("Points issued")), issued, None, ""),
        Kpi("points_redeemed", str(_("Points redeemed")), redeemed, None, ""),
        Kpi("points_expired", str(_("Points expired")), -ledger["expired"], None, ""),
        Kpi("liability", str(_("Outstanding points liability")), liability, None, "eur"),
    ]

    monthly_points = (
        LedgerEntry.objects.filter(created_at__gte=first_month, created_at__lte=now)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "kind")
        .annotate(total=Sum("points"))
        .order_by()
    )
    points_by = {(_month_key(row["month"]), row["kind"]): row["total"] for row in monthly_points}
    monthly_purchases = (
        Purchase.objects.filter(purchased_at__gte=first_month, purchased_at__lte=now)
        .annotate(month=TruncMonth("purchased_at"))
        .values("month")
        .annotate(
            members=Count("member", distinct=True), spend=Sum(F("amount") - F("refunded_amount"))
        )
        .order_by()
    )
    purchases_by = {_month_key(row["month"]): row for row in monthly_purchases}
    monthly_new = (
        Member.objects.filter(enrolled_at__gte=first_month, enrolled_at__lte=now)
        .annotate(month=TruncMonth("enrolled_at"))
        .values("month")
        .annotate(count=Count("pk"))
        .order_by()
    )
    new_by = {_month_key(row["month"]): row["count"] for row in monthly_new}

    keys = [month.strftime("%Y-%m") for month in months]
    return KpiReport(
        since=since,
        until=now,
        kpis=kpis,
        months=keys,
        points_issued=[sum(points_by.get((k, kind), 0) for kind in ISSUED_KINDS) for k in keys],
        points_redeemed=[-points_by.get((k, EntryKind.REDEEM), 0) for k in keys],
        points_expired=[-points_by.get((k, EntryKind.EXPIRE), 0) for k in keys],
        active_members=[purchases_by[k]["members"] if k in purchases_by else 0 for k in keys],
        spend=[float(purchases_by[k]["spend"]) if k in purchases_by else 0.0 for k in keys],
        new_members=[new_by.get(k, 0) for k in keys],
        member_count=member_count,
    )
