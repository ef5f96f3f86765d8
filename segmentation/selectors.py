"""Reads of segmentation: the purchase aggregate for a run, current scores, dashboards."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection
from django.db.models import (
    Avg,
    BigIntegerField,
    Case,
    Count,
    F,
    IntegerField,
    Q,
    QuerySet,
    SmallIntegerField,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, ExtractMonth, Least, TruncDate
from django.utils.translation import gettext_lazy as _

from loyalty.models import Purchase, Tier
from loyalty.pgcopy import NUMERIC_TYPES, read_binary
from members.models import Member, MemberStatus
from members.selectors import consenting_member_ids

from .models import (
    MemberScore,
    Quadrant,
    RuleSegment,
    RuleSegmentMember,
    RunStatus,
    Segment,
    SegmentationRun,
)

AGGREGATE_COLUMNS = [
    "member_id",
    "days_since_last",
    "frequency",
    "monetary",
    "purchases_total",
    "spend_total",
    "days_since_first",
    "first_spend",
    "last_epoch",
]

# Money as Purchase.net_cents (integer, net of refunds), which the (member, purchased_at)
# index includes: the aggregate never touches the table. first_spend: the spend of the
# earliest purchase, found by the minimum of one bigint that packs the minute of purchase
# above the spend in cents (a row constructor or array per row would triple the query's
# time). Two purchases in the same minute: the smaller one counts.
_POSTGRES_AGGREGATE = """
SELECT member_id,
       (date_part('epoch', %(now)s::timestamptz - max(purchased_at)) / 86400)::float8,
       count(*) FILTER (WHERE purchased_at > %(window_start)s::timestamptz),
       (coalesce(sum(net_cents) FILTER (WHERE purchased_at > %(window_start)s::timestamptz), 0)
        / 100.0)::float8,
       count(*),
       (sum(net_cents) / 100.0)::float8,
       (date_part('epoch', %(now)s::timestamptz - min(purchased_at)) / 86400)::float8,
       ((min(floor(date_part('epoch', purchased_at) / 60)::bigint * 10000000000 + net_cents)
         %% 10000000000) / 100.0)::float8,
       date_part('epoch', max(purchased_at))::float8 {extra}
FROM {purchase}
WHERE purchased_at <= %(now)s::timestamptz {part}
GROUP BY member_id
"""
# The binary type of each of those columns (then spend_<d>, purchases_<d> per window).
_POSTGRES_TYPES = dict.fromkeys(AGGREGATE_COLUMNS, "double precision") | {
    "member_id": "bigint",
    "frequency": "bigint",
    "purchases_total": "bigint",
}

# SQLite (the embedded demo): the same figures; the first purchase's spend by a subquery.
_SQLITE_AGGREGATE = """
SELECT p.member_id,
       julianday(%(now)s) - julianday(max(p.purchased_at)),
       sum(CASE WHEN p.purchased_at > %(window_start)s THEN 1 ELSE 0 END),
       coalesce(sum(CASE WHEN p.purchased_at > %(window_start)s
                         THEN p.amount - p.refunded_amount END), 0),
       count(*),
       sum(p.amount - p.refunded_amount),
       julianday(%(now)s) - julianday(min(p.purchased_at)),
       (SELECT f.amount - f.refunded_amount FROM {purchase} f
         WHERE f.member_id = p.member_id AND f.purchased_at <= %(now)s
         ORDER BY f.purchased_at, f.id LIMIT 1),
       max(p.purchased_at) {extra}
FROM {purchase} p
WHERE p.purchased_at <= %(now)s
GROUP BY p.member_id
"""


def _statement(cursor, sql: str, params) -> str:
    """The SQL with its parameters merged in (COPY takes no parameters)."""
    statement = cursor.mogrify(sql, params)
    return statement.decode() if isinstance(statement, bytes) else statement


def _aggregate_part(queries: list[tuple[str, list[str]]]) -> list[list[np.ndarray]]:
    """Queries, one after the other on this thread's connection, each as numpy columns."""
    try:
        with connection.cursor() as cursor:
            # Serial plans (1M groups are slower through a parallel sort and gather merge), no
            # JIT (its compile time is not earned back), and grouping by the (member,
            # purchased_at) index rather than a hash table: for half the members the planner
            # picks a hash aggregate that spills to disk and takes 60 % longer.
            # Thread connections close below.
            scope = "LOCAL " if connection.in_atomic_block else ""
            cursor.execute(f"SET {scope}max_parallel_workers_per_gather = 0")
            cursor.execute(f"SET {scope}jit = off")
            cursor.execute(f"SET {scope}enable_hashagg = off")
            return [read_binary(cursor.cursor, sql, types) for sql, types in queries]
    finally:
        if threading.current_thread() is not threading.main_thread():
            connection.close()


def purchase_aggregates(
    *, now: dt.datetime, window_start: dt.datetime, recent_days: Iterable[int] = ()
) -> pd.DataFrame:
    """Per member with purchases up to `now`: the figures RFM and CLV need, in one query.

    days_since_last / days_since_first are fractional days; frequency and monetary count only
    the window (window_start, now]; *_total and first_spend cover the whole history;
    last_epoch is the last purchase in seconds since 1970. For each of `recent_days` the
    columns spend_<days> (net of refunds) and purchases_<days> cover (now - days, now], for
    the rule segments. On PostgreSQL the rows stream out with COPY, several times faster than
    fetching, on two connections for two ranges of members (outside a transaction).
    """
    frame, _ids = _aggregate(now, window_start, recent_days, member_ids=False)
    return frame


def run_inputs(
    *, now: dt.datetime, window_start: dt.datetime, recent_days: Iterable[int] = ()
) -> tuple[pd.DataFrame, pd.Series]:
    """purchase_aggregates and scored_member_ids, read together: on PostgreSQL each of the two
    connections reads its range of members after its range of purchases, which also fills the
    wait for the slower range."""
    frame, ids = _aggregate(now, window_start, recent_days, member_ids=True)
    assert ids is not None  # asked for
    return frame, ids


def _aggregate(
    now: dt.datetime, window_start: dt.datetime, recent_days: Iterable[int], *, member_ids: bool
) -> tuple[pd.DataFrame, pd.Series | None]:
    """purchase_aggregates and, if `member_ids`, scored_member_ids."""
    table = Purchase._meta.db_table
    days = sorted(set(recent_days))
    params = {"now": now, "window_start": window_start}
    params.update({f"since_{d}": now - dt.timedelta(days=d) for d in days})
    columns = AGGREGATE_COLUMNS + [f"{kind}_{d}" for d in days for kind in ("spend", "purchases")]
    scored: pd.Series | None = None
    if connection.vendor == "postgresql":
        extra = "".join(
            f", (coalesce(sum(net_cents) FILTER (WHERE purchased_at > %(since_{d})s::timestamptz),"
            f" 0) / 100.0)::float8,"
            f" count(*) FILTER (WHERE purchased_at > %(since_{d})s::timestamptz)"
            for d in days
        )
        types = [_POSTGRES_TYPES[column] for column in AGGREGATE_COLUMNS]
        types += ["double precision", "bigint"] * len(days)
        active = Member.objects.filter(status=MemberStatus.ACTIVE).values_list("pk").order_by()
        with connection.cursor() as cursor:
            if connection.in_atomic_block:  # other connections would not see this transaction
                ranges = [("", active)]
            else:  # two ranges of members on two connections: both cores aggregate
                cursor.execute(f"SELECT (min(id) + max(id)) / 2 FROM {Member._meta.db_table}")
                middle = int(cursor.fetchone()[0] or 0)
                ranges = [
                    (f"AND member_id <= {middle}", active.filter(pk__lte=middle)),
                    (f"AND member_id > {middle}", active.filter(pk__gt=middle)),
                ]
            parts = []
            for part, members in ranges:
                sql = _POSTGRES_AGGREGATE.format(purchase=table, part=part, extra=extra)
                queries = [(_statement(cursor, sql, params), types)]
                if member_ids:
                    queries.append(
                        (_statement(cursor, *members.query.sql_with_params()), ["bigint"])
                    )
                parts.append(queries)
        if len(parts) == 1:
            results = [_aggregate_part(parts[0])]
        else:
            with ThreadPoolExecutor(max_workers=len(parts)) as pool:
                results = list(pool.map(_aggregate_part, parts))
        frame = pd.DataFrame(
            {
                name: np.concatenate([result[0][index] for result in results])
                for index, name in enumerate(columns)
            }
        )
        if member_ids:
            ids = np.sort(np.concatenate([result[1][0] for result in results]))
            scored = pd.Series(ids, name="member_id", dtype="int64")
    else:
        extra = "".join(
            f", coalesce(sum(CASE WHEN p.purchased_at > :since_{d}"
            f" THEN p.amount - p.refunded_amount END), 0)"
            f", sum(CASE WHEN p.purchased_at > :since_{d} THEN 1 ELSE 0 END)"
            for d in days
        )
        query = _SQLITE_AGGREGATE.format(purchase=table, extra=extra)
        # Django keeps SQLite datetimes as naive UTC text; compare in the same form.
        sqlite_params = {
            key: value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
            for key, value in params.items()
        }
        with connection.cursor() as cursor:
            cursor.execute(
                query.replace("%(now)s", ":now").replace("%(window_start)s", ":window_start"),
                sqlite_params,
            )
            frame = pd.DataFrame(cursor.fetchall(), columns=columns)
        if member_ids:
            scored = scored_member_ids()
        frame["last_epoch"] = (
            pd.to_datetime(frame["last_epoch"], utc=True, format="ISO8601")
            - pd.Timestamp(0, tz="UTC")
        ) / pd.Timedelta(seconds=1)
    for column in ("monetary", "spend_total", "first_spend", "last_epoch"):
        frame[column] = frame[column].astype("float64")
    for d in days:
        frame[f"spend_{d}"] = frame[f"spend_{d}"].astype("float64").round(2)
        frame[f"purchases_{d}"] = frame[f"purchases_{d}"].astype("int64")
    return frame, scored


def scored_member_ids() -> pd.Series:
    """The members a run scores: every active member, with or without purchases (sorted)."""
    query = Member.objects.filter(status=MemberStatus.ACTIVE).values_list("pk").order_by()
    (ids,) = _columns(query, ["bigint"])
    return pd.Series(np.sort(ids), name="member_id", dtype="int64")


_EPOCH_DATE = dt.date(2000, 1, 1)  # PostgreSQL's binary dates count days from here


def _columns(query: QuerySet, types: list[str]) -> list[np.ndarray]:
    """A values_list() query's columns as numpy arrays, rows in no particular order:
    fixed-width types, never NULL (coalesce in the query), the first an integer; a date comes as
    days since 2000-01-01. On PostgreSQL through binary COPY (read_binary), several times
    faster than fetching or CSV at a million rows."""
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return read_binary(cursor.cursor, _statement(cursor, sql, params), types)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    columns = []
    for index, pgtype in enumerate(types):
        values = [row[index] for row in rows]
        if pgtype == "date":
            # SQLite's raw cursor gives dates as ISO text
            values = [(dt.date.fromisoformat(str(value)) - _EPOCH_DATE).days for value in values]
        columns.append(np.asarray(values, dtype=NUMERIC_TYPES[pgtype][1:]))
    return columns


def member_attributes() -> pd.DataFrame:
    """Per active member what rule segments ask besides scores and purchases: language,
    birth month, enrolment date (local), tier name, as of now."""
    languages = [code for code, _name in settings.LANGUAGES]
    query = (
        Member.objects.filter(status=MemberStatus.ACTIVE)
        .order_by()
        .annotate(
            language_index=Cast(
                Case(
                    *(When(language=code, then=Value(i)) for i, code in enumerate(languages, 1)),
                    default=Value(0),
                ),
                SmallIntegerField(),
            ),
            month=Cast(Coalesce(ExtractMonth("birth_date"), Value(0)), SmallIntegerField()),
            enrolled_day=TruncDate("enrolled_at", tzinfo=ZoneInfo(settings.TIME_ZONE)),
            tier_id=Cast(Coalesce("points_account__tier_id", Value(0)), BigIntegerField()),
        )
        .values_list("pk", "language_index", "month", "enrolled_day", "tier_id")
    )
    ids, language, month, enrolled, tier = _columns(
        query, ["bigint", "smallint", "smallint", "date", "bigint"]
    )
    tier_names = pd.Series(tier).map(dict(Tier.objects.values_list("pk", "name")))
    return pd.DataFrame(
        {
            "member_id": ids,
            "language": np.array([None, *languages], dtype=object)[language],
            "birth_month": np.where(month > 0, month, np.nan),
            "enrolled_date": (np.datetime64(_EPOCH_DATE, "D") + enrolled).astype("datetime64[ns]"),
            "tier": tier_names.astype(object).where(tier_names.notna(), None).to_numpy(),
        }
    )


def consenting_ids() -> np.ndarray:
    """Ids of members whose newest e-mail consent grants it (for rule segments in a run)."""
    # Without the records' default ordering: a sort of every record for nothing.
    (ids,) = _columns(consenting_member_ids().order_by(), ["bigint"])
    return ids


def current_run() -> SegmentationRun | None:
    return SegmentationRun.objects.filter(is_current=True).first()


def finished_runs() -> QuerySet[SegmentationRun]:
    return SegmentationRun.objects.filter(status=RunStatus.DONE).order_by("-started_at", "-pk")


def member_current_score(*, member: Member) -> MemberScore | None:
    """The member's scores in the current run (None before the first run or if not scored)."""
    return (
        MemberScore.objects.filter(member=member, run__is_current=True)
        .select_related("run")
        .first()
    )


def member_score_history(*, member: Member, runs: int = 6) -> list[MemberScore]:
    """The member's scores in the latest finished runs, newest first (one query per call)."""
    run_ids = list(finished_runs().values_list("pk", flat=True)[:runs])
    return list(
        MemberScore.objects.filter(member=member, run_id__in=run_ids)
        .select_related("run")
        .order_by("-run__started_at", "-run_id")
    )


def member_rule_segments(*, member: Member) -> list[RuleSegment]:
    """The rule-based segments the member is in, as of the current run."""
    run = current_run()
    if run is None:
        return []
    # segment_id IN (...) lets the unique (run, segment, member) index answer with one probe
    # per segment; there is no (run, member) index to maintain for a million rows per run.
    segment_ids = list(RuleSegment.objects.values_list("pk", flat=True))
    found = RuleSegmentMember.objects.filter(
        run=run, segment_id__in=segment_ids, member=member
    ).values("segment_id")
    return list(RuleSegment.objects.filter(pk__in=found).order_by("name"))


def rule_segment_counts() -> dict[int, int]:
    """Members per rule segment in the current run (one query)."""
    return dict(
        RuleSegmentMember.objects.filter(run__is_current=True)
        .values("segment_id")
        .annotate(members=Count("pk"))
        .order_by()
        .values_list("segment_id", "members")
    )


def members_in_segments(
    *,
    segments: list[str] | None = None,
    quadrants: list[str] | None = None,
    rule_segment_ids: list[int] | None = None,
) -> QuerySet[Member]:
    """Active members in any of the named segments, quadrants or rule segments of the current
    run: the one entry point for rewards limited to segments and campaign targeting."""
    run = current_run()
    if run is None:
        return Member.objects.none()
    condition = Q(pk__in=[])
    if segments or quadrants:
        scored = MemberScore.objects.filter(run=run)
        named = Q(pk__in=[])
        if segments:
            named |= Q(segment__in=segments)
        if quadrants:
            named |= Q(quadrant__in=quadrants)
        condition |= Q(pk__in=scored.filter(named).values("member_id"))
    if rule_segment_ids:
        condition |= Q(
            pk__in=RuleSegmentMember.objects.filter(
                run=run, segment_id__in=rule_segment_ids
            ).values("member_id")
        )
    return Member.objects.filter(condition, status=MemberStatus.ACTIVE)


# --- dashboards: every function is one grouped query, whatever the number of members -------

CLV_BINS = [0, 5, 10, 20, 50, 100, 200, 500, 1000]


@dataclass(frozen=True)
class SegmentRow:
    segment: str
    label: str
    members: int
    member_share: float
    revenue: float
    revenue_share: float
    avg_recency: float | None
    avg_frequency: float
    avg_monetary: float
    avg_clv: float | None
    avg_p_alive: float | None


def segment_summary(*, run: SegmentationRun) -> list[SegmentRow]:
    """Per named segment: members, revenue in the window and its share, averages (table order)."""
    rows = {
        row["segment"]: row
        for row in MemberScore.objects.filter(run=run)
        .values("segment")
        .annotate(
            members=Count("pk"),
            revenue=Sum("monetary"),
            avg_recency=Avg("recency_days"),
            avg_frequency=Avg("frequency"),
            avg_monetary=Avg("monetary"),
            avg_clv=Avg("clv"),
            avg_p_alive=Avg("p_alive"),
        )
        .order_by()
    }
    total_members = sum(row["members"] for row in rows.values()) or 1
    total_revenue = sum(row["revenue"] or 0 for row in rows.values()) or 1
    result = []
    for segment in Segment:
        row = rows.get(segment.value)
        if row is None:
            result.append(
                SegmentRow(segment.value, str(segment.label), 0, 0, 0, 0, None, 0, 0, None, None)
            )
            continue
        result.append(
            SegmentRow(
                segment=segment.value,
                label=str(segment.label),
                members=row["members"],
                member_share=row["members"] / total_members,
                revenue=float(row["revenue"] or 0),
                revenue_share=float(row["revenue"] or 0) / total_revenue,
                avg_recency=row["avg_recency"],
                avg_frequency=float(row["avg_frequency"] or 0),
                avg_monetary=float(row["avg_monetary"] or 0),
                avg_clv=row["avg_clv"],
                avg_p_alive=row["avg_p_alive"],
            )
        )
    return result


def rf_heatmap(*, run: SegmentationRun) -> dict:
    """Members per (R, F) score pair: rows R from high to low, columns F from low to high."""
    scale = int(run.parameters.get("scale", 5))
    counts = {
        (row["r_score"], row["f_score"]): row["members"]
        for row in MemberScore.objects.filter(run=run, r_score__isnull=False)
        .values("r_score", "f_score")
        .annotate(members=Count("pk"))
        .order_by()
    }
    peak = max(counts.values(), default=0) or 1
    return {
        "f_scores": list(range(1, scale + 1)),
        "rows": [
            {
                "r": r,
                "cells": [
                    {
                        "f": f,
                        "members": counts.get((r, f), 0),
                        "shade": counts.get((r, f), 0) / peak,
                    }
                    for f in range(1, scale + 1)
                ],
            }
            for r in range(scale, 0, -1)
        ],
    }


# What to do with each quadrant (Reinartz & Kumar), shown on the dashboard.
QUADRANT_ADVICE = {
    Quadrant.TRUE_FRIENDS: _("Invest: reward and communicate consistently, they stay and pay."),
    Quadrant.BUTTERFLIES: _(
        "Invest while they are here: targeted offers now, do not chase lasting loyalty."
    ),
    Quadrant.BARNACLES: _("Make them profitable: up-sell and cross-sell, measure share of wallet."),
    Quadrant.STRANGERS: _("Do not invest: make every transaction profitable, no loyalty spend."),
}


@dataclass(frozen=True)
class QuadrantRow:
    quadrant: str
    label: str
    advice: str
    members: int
    revenue: float
    avg_clv: float | None
    total_clv: float


def quadrant_summary(*, run: SegmentationRun) -> list[QuadrantRow]:
    rows = {
        row["quadrant"]: row
        for row in MemberScore.objects.filter(run=run)
        .values("quadrant")
        .annotate(
            members=Count("pk"), revenue=Sum("monetary"), avg_clv=Avg("clv"), total_clv=Sum("clv")
        )
        .order_by()
    }
    return [
        QuadrantRow(
            quadrant=quadrant.value,
            label=str(quadrant.label),
            advice=str(QUADRANT_ADVICE[quadrant]),
            members=rows.get(quadrant.value, {}).get("members", 0),
            revenue=float(rows.get(quadrant.value, {}).get("revenue") or 0),
            avg_clv=rows.get(quadrant.value, {}).get("avg_clv"),
            total_clv=float(rows.get(quadrant.value, {}).get("total_clv") or 0),
        )
        for quadrant in Quadrant
    ]


def transitions(*, before: SegmentationRun, after: SegmentationRun) -> dict:
    """Who moved from which segment (in `before`) to which (in `after`): one joined query.

    Members scored in `after` but not in `before` come from the row "not scored"."""
    table = MemberScore._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT coalesce(old.segment, ''), new.segment, count(*) FROM {table} new "
            f"LEFT JOIN {table} old ON old.member_id = new.member_id AND old.run_id = %s "
            "WHERE new.run_id = %s GROUP BY 1, 2",
            [before.pk, after.pk],
        )
        counts = {(old, new): count for old, new, count in cursor.fetchall()}
    columns = list(Segment)
    sources = [*Segment, None]
    peak = max(counts.values(), default=0) or 1
    rows = []
    for source in sources:
        key = source.value if source is not None else ""
        cells = [
            {
                "segment": target.value,
                "members": counts.get((key, target.value), 0),
                "shade": counts.get((key, target.value), 0) / peak,
                "stayed": key == target.value,
            }
            for target in columns
        ]
        rows.append(
            {
                "segment": key,
                "label": source.label if source is not None else _("Not scored"),
                "cells": cells,
                "total": sum(cell["members"] for cell in cells),
            }
        )
    moved = sum(count for (old, new), count in counts.items() if old != new and old != "")
    return {
        "columns": [(segment.value, segment.label) for segment in columns],
        "rows": rows,
        "moved": moved,
        "total": sum(counts.values()),
    }


def value_distributions(*, run: SegmentationRun) -> dict:
    """Histograms: CLV in EUR bands and P(alive) in tenths (one query each)."""
    scores = MemberScore.objects.filter(run=run)
    alive = {
        row["band"]: row["members"]
        for row in scores.filter(p_alive__isnull=False)
        .annotate(band=Least(Cast(F("p_alive") * 10, IntegerField()), Value(9)))
        .values("band")
        .annotate(members=Count("pk"))
        .order_by()
    }
    whens = [When(clv__lt=upper, then=Value(index)) for index, upper in enumerate(CLV_BINS[1:])]
    clv_counts = {
        row["band"]: row["members"]
        for row in scores.filter(clv__isnull=False)
        .annotate(band=Case(*whens, default=Value(len(CLV_BINS) - 1)))
        .values("band")
        .annotate(members=Count("pk"))
        .order_by()
    }
    clv_labels = [f"€ {low}-{high}" for low, high in itertools.pairwise(CLV_BINS)] + [
        f"€ {CLV_BINS[-1]}+"
    ]
    return {
        "p_alive_labels": [f"{band / 10:.1f}-{(band + 1) / 10:.1f}" for band in range(10)],
        "p_alive": [alive.get(band, 0) for band in range(10)],
        "clv_labels": clv_labels,
        "clv": [clv_counts.get(band, 0) for band in range(len(CLV_BINS))],
    }


def export_rows(
    *,
    run: SegmentationRun,
    segment: str | None = None,
    quadrant: str | None = None,
    rule_segment: RuleSegment | None = None,
):
    """The members of one segment in `run`, with their scores, streamed for a CSV export."""
    scores = MemberScore.objects.filter(run=run)
    if segment:
        scores = scores.filter(segment=segment)
    if quadrant:
        scores = scores.filter(quadrant=quadrant)
    if rule_segment is not None:
        scores = scores.filter(
            member_id__in=RuleSegmentMember.objects.filter(run=run, segment=rule_segment).values(
                "member_id"
            )
        )
    return (
        scores.order_by("member_id")
        .values_list(
            "member__member_number",
            "member__email",
            "member__first_name",
            "member__last_name",
            "member__language",
            "segment",
            "quadrant",
            "r_score",
            "f_score",
            "m_score",
            "recency_days",
            "frequency",
            "monetary",
            "clv",
            "p_alive",
            "expected_purchases",
        )
        .iterator(chunk_size=5000)
    )
