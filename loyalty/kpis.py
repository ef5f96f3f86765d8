"""The program's KPIs against its objectives (phase 1 of the method), for the admin page.

A fixed number of queries whatever the data size. At a million members, aggregating 12 months
of purchases and ledger on every view took seconds, so the page reads daily rollups
(`KpiDay`, written by `kpi_rollup`, a periodic task) for the days before the rollup's cut-off
and computes what happened since live. `program_kpis_recomputed` computes the same figures
from the raw rows; the tests prove both agree. The window is 12 months of whole local days:
from the day after the same date a year ago, 00:00, to now.

A purchase recorded after the rollup with a purchase time before its cut-off (a late import)
counts from the next day's rollup on; refunds recorded after the rollup are taken in live.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Sum
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, MemberStatus

from .models import (
    EntryKind,
    KpiDay,
    KpiRollup,
    LedgerEntry,
    PointsAccount,
    ProgramSettings,
    Purchase,
    Refund,
)

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


@dataclass
class _Month:
    active: int = 0
    spend: Decimal = Decimal("0")
    issued: int = 0
    redeemed: int = 0
    expired: int = 0
    new_members: int = 0


@dataclass
class _Figures:
    """What the report is made of, however it was computed (points as positive numbers)."""

    active: int
    purchases: int
    spend: Decimal
    issued: int
    redeemed: int
    expired: int
    outstanding: int
    months: dict[str, _Month]


@dataclass(frozen=True)
class _Window:
    now: dt.datetime
    since: dt.datetime  # local midnight: 12 months of whole days up to now
    first_month: dt.datetime  # local midnight of the first charted month's first day
    months: list[dt.date]

    @property
    def start(self) -> dt.datetime:
        """The earliest moment either the totals or the charted months need."""
        return min(self.since, self.first_month)


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _window(now: dt.datetime) -> _Window:
    today = timezone.localdate(now)
    months = _months(now)
    return _Window(
        now=now,
        since=_midnight(today - relativedelta(months=12) + dt.timedelta(days=1)),
        first_month=_midnight(months[0]),
        months=months,
    )


def program_kpis(*, now: dt.datetime | None = None) -> KpiReport:
    """The report from the rollups and what happened since them (or recomputed from the rows
    when no rollup covers the window: before the periodic task's first run)."""
    window = _window(now or timezone.now())
    rollup = KpiRollup.objects.filter(pk=1).first()
    usable = (
        rollup is not None
        and rollup.horizon <= timezone.localdate(window.start)
        and rollup.complete_until <= window.now
    )
    figures = _from_rollup(window, rollup) if usable else _recomputed(window)
    return _report(window, figures)


def program_kpis_recomputed(*, now: dt.datetime | None = None) -> KpiReport:
    """The same report computed from the purchases, ledger and members alone."""
    window = _window(now or timezone.now())
    return _report(window, _recomputed(window))


def _report(window: _Window, figures: _Figures) -> KpiReport:
    program = ProgramSettings.load()
    member_count = Member.objects.filter(status=MemberStatus.ACTIVE).count()
    active = figures.active
    issued, redeemed = figures.issued, figures.redeemed
    per_member = Decimal(figures.purchases) / active if active else Decimal("0")
    spend_per_member = figures.spend / active if active else Decimal("0")
    redemption_rate = Decimal(redeemed) * 100 / issued if issued else Decimal("0")
    liability = (Decimal(figures.outstanding) * program.point_value_eur).quantize(Decimal("0.01"))

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
        Kpi("points_expired", str(_("Points expired")), figures.expired, None, ""),
        Kpi("liability", str(_("Outstanding points liability")), liability, None, "eur"),
    ]
    keys = [month.strftime("%Y-%m") for month in window.months]
    months = [figures.months.get(key, _Month()) for key in keys]
    return KpiReport(
        since=window.since,
        until=window.now,
        kpis=kpis,
        months=keys,
        points_issued=[month.issued for month in months],
        points_redeemed=[month.redeemed for month in months],
        points_expired=[month.expired for month in months],
        active_members=[month.active for month in months],
        spend=[float(month.spend) for month in months],
        new_members=[month.new_members for month in months],
        member_count=member_count,
    )


# --- from the raw rows ---------------------------------------------------------------------


def _recomputed(window: _Window) -> _Figures:
    now, since, first_month = window.now, window.since, window.first_month
    purchases = Purchase.objects.filter(purchased_at__gte=since, purchased_at__lte=now)
    totals = purchases.aggregate(
        active=Count("member", distinct=True),
        count=Count("pk"),
        spend=Coalesce(Sum(F("amount") - F("refunded_amount")), Decimal("0")),
    )
    ledger = LedgerEntry.objects.filter(created_at__gte=since, created_at__lte=now).aggregate(
        issued=Coalesce(Sum("points", filter=Q(kind__in=ISSUED_KINDS)), 0),
        redeemed=Coalesce(Sum("points", filter=Q(kind=EntryKind.REDEEM)), 0),
        expired=Coalesce(Sum("points", filter=Q(kind=EntryKind.EXPIRE)), 0),
    )
    outstanding = PointsAccount.objects.aggregate(total=Coalesce(Sum("balance"), 0))["total"]

    months: dict[str, _Month] = {}

    def month(value) -> _Month:
        return months.setdefault(_month_key(value), _Month())

    for row in (
        LedgerEntry.objects.filter(created_at__gte=first_month, created_at__lte=now)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "kind")
        .annotate(total=Sum("points"))
        .order_by()
    ):
        _add_points(month(row["month"]), row["kind"], row["total"])
    for row in (
        Purchase.objects.filter(purchased_at__gte=first_month, purchased_at__lte=now)
        .annotate(month=TruncMonth("purchased_at"))
        .values("month")
        .annotate(
            members=Count("member", distinct=True), spend=Sum(F("amount") - F("refunded_amount"))
        )
        .order_by()
    ):
        month(row["month"]).active = row["members"]
        month(row["month"]).spend = row["spend"]
    for row in (
        Member.objects.filter(enrolled_at__gte=first_month, enrolled_at__lte=now)
        .annotate(month=TruncMonth("enrolled_at"))
        .values("month")
        .annotate(count=Count("pk"))
        .order_by()
    ):
        month(row["month"]).new_members = row["count"]
    return _Figures(
        active=totals["active"],
        purchases=totals["count"],
        spend=totals["spend"],
        issued=ledger["issued"],
        redeemed=-ledger["redeemed"],
        expired=-ledger["expired"],
        outstanding=outstanding,
        months=months,
    )


def _add_points(month: _Month, kind: str, points: int) -> None:
    if kind in ISSUED_KINDS:
        month.issued += points
    elif kind == EntryKind.REDEEM:
        month.redeemed -= points
    elif kind == EntryKind.EXPIRE:
        month.expired -= points


# --- from the rollups and the rows since them ----------------------------------------------

# Members looked up per query for their latest purchase before the rollup's cut-off.
_MEMBER_CHUNK = 5000


def _live_purchases_of_one_month(
    figures: _Figures, bucket: _Month, cutoff: dt.datetime, now: dt.datetime, since: dt.datetime
) -> None:
    """The purchases since the cut-off when they all fall in the cut-off's month, counted in
    SQL: a member is active this month (in the window) unless they bought from the month's
    (window's) start to the cut-off, which the rollup counted already."""
    live = Purchase.objects.filter(purchased_at__gte=cutoff, purchased_at__lte=now)
    net = F("amount") - F("refunded_amount")
    totals = live.aggregate(
        spend=Coalesce(Sum(net), Decimal("0")),
        window_purchases=Count("pk", filter=Q(purchased_at__gte=since)),
        window_spend=Coalesce(Sum(net, filter=Q(purchased_at__gte=since)), Decimal("0")),
    )

    def new_buyers(purchases, period_start: dt.datetime) -> int:
        earlier = Purchase.objects.filter(
            member_id=OuterRef("member_id"), purchased_at__gte=period_start, purchased_at__lt=cutoff
        )
        return purchases.exclude(Exists(earlier)).values("member_id").distinct().count()

    bucket.spend += totals["spend"]
    bucket.active += new_buyers(live, _midnight(timezone.localtime(cutoff).date().replace(day=1)))
    figures.purchases += totals["window_purchases"]
    figures.spend += totals["window_spend"]
    figures.active += new_buyers(live.filter(purchased_at__gte=since), since)


def _from_rollup(window: _Window, rollup: KpiRollup) -> _Figures:
    now, since, start = window.now, window.since, window.start
    cutoff = rollup.complete_until
    figures = _Figures(
        active=0,
        purchases=0,
        spend=Decimal("0"),
        issued=0,
        redeemed=0,
        expired=0,
        outstanding=rollup.points_outstanding,
        months={},
    )

    keys: dict[dt.date, str] = {}

    def month(value) -> _Month:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            key = keys.get(value) or keys.setdefault(value, _month_key(value))
        else:
            key = _month_key(value)
        return figures.months.setdefault(key, _Month())

    since_day = timezone.localdate(since)
    first_day = timezone.localdate(window.first_month)
    for day in KpiDay.objects.filter(
        day__gte=timezone.localdate(start), day__lt=timezone.localdate(cutoff)
    ):
        bucket = month(day.day) if day.day >= first_day else _Month()
        bucket.active += day.month_first_buyers
        bucket.spend += day.spend
        bucket.issued += day.points_issued
        bucket.redeemed += day.points_redeemed
        bucket.expired += day.points_expired
        bucket.new_members += day.new_members
        if day.day >= since_day:
            figures.active += day.last_buyers
            figures.purchases += day.purchases
            figures.spend += day.spend
            figures.issued += day.points_issued
            figures.redeemed += day.points_redeemed
            figures.expired += day.points_expired

    # The live part is usually today's, so of one month: then it is summed in SQL (29,000
    # purchases and ledger entries read row by row took 1.5 s of the page at the benchmark
    # volume); across months (a rollup days behind) row by row.
    cutoff_month = timezone.localtime(cutoff).date().replace(day=1)
    one_month = cutoff_month == timezone.localtime(now).date().replace(day=1) and since <= cutoff

    def local_month_of(value: dt.datetime) -> dt.date:
        return cutoff_month if one_month else timezone.localtime(value).date().replace(day=1)

    if one_month:
        _live_purchases_of_one_month(figures, month(cutoff_month), cutoff, now, since)
    else:
        # Purchases since the cut-off; a member counts as active (in the window, in a month) when
        # the rollup did not count them already: no purchase from the window's (month's) start on.
        live = list(
            Purchase.objects.filter(purchased_at__gte=cutoff, purchased_at__lte=now).values_list(
                "member_id", "purchased_at", "amount", "refunded_amount"
            )
        )
        buyers = sorted({member_id for member_id, *_rest in live})
        latest_before: dict[int, dt.datetime] = {}
        for offset in range(0, len(buyers), _MEMBER_CHUNK):
            latest_before.update(
                Purchase.objects.filter(
                    member_id__in=buyers[offset : offset + _MEMBER_CHUNK],
                    purchased_at__gte=start,
                    purchased_at__lt=cutoff,
                )
                .values("member_id")
                .annotate(latest=Max("purchased_at"))
                .values_list("member_id", "latest")
                .order_by()
            )
        window_buyers: set[int] = set()
        month_buyers: dict[str, set[int]] = {}
        for member_id, purchased_at, amount, refunded in live:
            local_month = local_month_of(purchased_at)
            bucket = month(local_month)
            bucket.spend += amount - refunded
            before = latest_before.get(member_id)
            if before is None or before < _midnight(local_month):
                month_buyers.setdefault(_month_key(local_month), set()).add(member_id)
            if purchased_at >= since:
                figures.purchases += 1
                figures.spend += amount - refunded
                if before is None or before < since:
                    window_buyers.add(member_id)
        figures.active += len(window_buyers)
        for key, members in month_buyers.items():
            figures.months[key].active += len(members)

    # Refunds recorded after the rollup, of purchases it summed.
    for amount, purchased_at in Refund.objects.filter(
        created_at__gt=rollup.computed_at,
        purchase__purchased_at__gte=start,
        purchase__purchased_at__lt=cutoff,
    ).values_list("amount", "purchase__purchased_at"):
        month(timezone.localtime(purchased_at)).spend -= amount
        if purchased_at >= since:
            figures.spend -= amount

    # Points since the cut-off, summed per kind and month in SQL (a figure is linear in them).
    entries = LedgerEntry.objects.filter(created_at__gte=cutoff, created_at__lte=now)
    if one_month:
        per_kind = [
            (cutoff_month, True, kind, points)
            for kind, points in entries.values("kind")
            .annotate(points=Sum("points"))
            .order_by()
            .values_list("kind", "points")
        ]
    else:
        per_kind = [
            (local_month_of(created_at), created_at >= since, kind, points)
            for kind, points, created_at in entries.values_list("kind", "points", "created_at")
        ]
    for local_month, in_window, kind, points in per_kind:
        figures.outstanding += points
        _add_points(month(local_month), kind, points)
        if in_window:
            totals = _Month()
            _add_points(totals, kind, points)
            figures.issued += totals.issued
            figures.redeemed += totals.redeemed
            figures.expired += totals.expired

    # Every status: the (status, enrolled_at) index then serves the range.
    for (enrolled_at,) in Member.objects.filter(
        status__in=MemberStatus.values, enrolled_at__gte=cutoff, enrolled_at__lte=now
    ).values_list("enrolled_at"):
        month(local_month_of(enrolled_at)).new_members += 1
    return figures


# --- the rollup (a periodic task) ----------------------------------------------------------


@transaction.atomic
def kpi_rollup(*, now: dt.datetime | None = None, force: bool = False) -> KpiRollup:
    """Roll up every local day from 13 months before today up to today's midnight into
    `KpiDay` rows, replacing the previous ones in one transaction. Returns at once when the
    rollup already ends at today's midnight (unless `force`): the task runs hourly."""
    now = now or timezone.now()
    cutoff = _midnight(timezone.localdate(now))
    current = KpiRollup.objects.select_for_update().filter(pk=1).first()
    if current is not None and current.complete_until == cutoff and not force:
        return current
    computed_at = timezone.now()  # refunds recorded after this are taken in live
    horizon = (timezone.localdate(now) - relativedelta(months=13)).replace(day=1)
    start = _midnight(horizon)
    days: dict[dt.date, KpiDay] = {}

    def day(value: dt.date) -> KpiDay:
        return days.setdefault(value, KpiDay(day=value))

    for row in (
        Purchase.objects.filter(purchased_at__gte=start, purchased_at__lt=cutoff)
        .annotate(day=TruncDate("purchased_at"))
        .values("day")
        .annotate(count=Count("pk"), spend=Sum(F("amount") - F("refunded_amount")))
        .order_by()
    ):
        day(row["day"]).purchases = row["count"]
        day(row["day"]).spend = row["spend"]
    for first_day, members in _first_buyers_per_day(start, cutoff):
        day(first_day).month_first_buyers = members
    for last_day, members in _last_buyers_per_day(start, cutoff):
        day(last_day).last_buyers = members
    for row in (
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=cutoff)
        .annotate(day=TruncDate("created_at"))
        .values("day", "kind")
        .annotate(total=Sum("points"))
        .order_by()
    ):
        bucket = _Month()
        _add_points(bucket, row["kind"], row["total"])
        entry = day(row["day"])
        entry.points_issued += bucket.issued
        entry.points_redeemed += bucket.redeemed
        entry.points_expired += bucket.expired
    for row in (
        Member.objects.filter(enrolled_at__gte=start, enrolled_at__lt=cutoff)
        .annotate(day=TruncDate("enrolled_at"))
        .values("day")
        .annotate(count=Count("pk"))
        .order_by()
    ):
        day(row["day"]).new_members = row["count"]
    outstanding = LedgerEntry.objects.filter(created_at__lt=cutoff).aggregate(
        total=Coalesce(Sum("points"), 0)
    )["total"]

    KpiDay.objects.all().delete()
    KpiDay.objects.bulk_create(sorted(days.values(), key=lambda entry: entry.day), batch_size=500)
    rollup, _created = KpiRollup.objects.update_or_create(
        pk=1,
        defaults={
            "complete_until": cutoff,
            "horizon": horizon,
            "computed_at": computed_at,
            "points_outstanding": outstanding,
        },
    )
    return rollup


def _first_buyers_per_day(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.date, int]]:
    """(day, members whose first purchase of the day's month is on it), local days."""
    if connection.vendor == "postgresql":
        return _grouped_sql(
            "SELECT first_day, count(*) FROM (SELECT min((purchased_at AT TIME ZONE %s)::date) "
            "AS first_day FROM {table} WHERE purchased_at >= %s AND purchased_at < %s "
            "GROUP BY member_id, date_trunc('month', purchased_at AT TIME ZONE %s)) firsts "
            "GROUP BY first_day",
            start,
            end,
            twice=True,
        )
    firsts: dict[tuple[int, dt.date], dt.date] = {}
    for member_id, purchased_at in _purchase_times(start, end):
        local = timezone.localtime(purchased_at).date()
        key = (member_id, local.replace(day=1))
        if key not in firsts or local < firsts[key]:
            firsts[key] = local
    return _count_days(firsts.values())


def _last_buyers_per_day(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.date, int]]:
    """(day, members whose latest purchase before `end` is on it), local days."""
    if connection.vendor == "postgresql":
        return _grouped_sql(
            "SELECT last_day, count(*) FROM (SELECT (max(purchased_at) AT TIME ZONE %s)::date "
            "AS last_day FROM {table} WHERE purchased_at >= %s AND purchased_at < %s "
            "GROUP BY member_id) lasts GROUP BY last_day",
            start,
            end,
        )
    lasts: dict[int, dt.datetime] = {}
    for member_id, purchased_at in _purchase_times(start, end):
        if member_id not in lasts or purchased_at > lasts[member_id]:
            lasts[member_id] = purchased_at
    return _count_days(timezone.localtime(moment).date() for moment in lasts.values())


def _grouped_sql(sql: str, start, end, *, twice: bool = False) -> list[tuple[dt.date, int]]:
    zone = timezone.get_current_timezone_name()
    params = [zone, start, end] + ([zone] if twice else [])
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=Purchase._meta.db_table), params)
        return list(cursor.fetchall())


def _purchase_times(start: dt.datetime, end: dt.datetime):
    return (
        Purchase.objects.filter(purchased_at__gte=start, purchased_at__lt=end)
        .values_list("member_id", "purchased_at")
        .order_by()
        .iterator(chunk_size=5000)
    )


def _count_days(days) -> list[tuple[dt.date, int]]:
    counts: dict[dt.date, int] = {}
    for value in days:
        counts[value] = counts.get(value, 0) + 1
    return list(counts.items())
