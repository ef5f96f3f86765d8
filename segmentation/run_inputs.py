"""What a recalculation reads, in bulk: the purchase aggregate, the scored members, their
attributes and consent, as numpy columns and DataFrames. On PostgreSQL through binary COPY
(loyalty.pgcopy.read_binary), several times faster than fetching at a million members.

The pages' and dashboards' reads of the runs' results are in selectors.py.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    QuerySet,
    SmallIntegerField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, ExtractMonth, TruncDate

from loyalty.models import Purchase, Tier
from loyalty.pgcopy import NUMERIC_TYPES, read_binary
from members.models import Member, MemberStatus
from members.selectors import consenting_member_ids

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
WHERE p.purchased_at <= %(now)s {part}
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


IdRange = tuple[int, int]  # first and last member id, both included

# A range of fewer member ids is read on one connection.
MIN_SPLIT_IDS = 1000


def run_inputs(
    *,
    now: dt.datetime,
    window_start: dt.datetime,
    recent_days: Iterable[int] = (),
    id_range: IdRange | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """purchase_aggregates and scored_member_ids, read together: on PostgreSQL each of the two
    connections reads its range of members after its range of purchases, which also fills the
    wait for the slower range. With `id_range` only the members in it, on one connection
    (a chunked run's range task)."""
    frame, ids = _aggregate(now, window_start, recent_days, member_ids=True, id_range=id_range)
    assert ids is not None  # asked for
    return frame, ids


def _aggregate(
    now: dt.datetime,
    window_start: dt.datetime,
    recent_days: Iterable[int],
    *,
    member_ids: bool,
    id_range: IdRange | None = None,
) -> tuple[pd.DataFrame, pd.Series | None]:
    """purchase_aggregates and, if `member_ids`, scored_member_ids (of `id_range` if given)."""
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
            if id_range is not None:
                # A range's two halves on two connections too, outside a transaction.
                first, last = (int(bound) for bound in id_range)
                middle = (first + last) // 2
                if connection.in_atomic_block or last - first < MIN_SPLIT_IDS:
                    bounds = [(first, last)]
                else:
                    bounds = [(first, middle), (middle + 1, last)]
                ranges = [
                    (
                        f"AND member_id BETWEEN {low} AND {high}",
                        active.filter(pk__range=(low, high)),
                    )
                    for low, high in bounds
                ]
            elif connection.in_atomic_block:  # other connections would not see this transaction
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
        part = ""
        if id_range is not None:
            part = "AND p.member_id BETWEEN {} AND {}".format(*(int(bound) for bound in id_range))
        query = _SQLITE_AGGREGATE.format(purchase=table, extra=extra, part=part)
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
            scored = scored_member_ids(id_range)
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


def _in_range(query: QuerySet, id_range: IdRange | None, field: str = "pk") -> QuerySet:
    if id_range is None:
        return query
    return query.filter(**{f"{field}__gte": id_range[0], f"{field}__lte": id_range[1]})


def scored_member_ids(id_range: IdRange | None = None) -> pd.Series:
    """The members a run scores: every active member, with or without purchases (sorted);
    those in `id_range` if given."""
    query = _in_range(
        Member.objects.filter(status=MemberStatus.ACTIVE).values_list("pk").order_by(), id_range
    )
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


def member_attributes(id_range: IdRange | None = None) -> pd.DataFrame:
    """Per active member (in `id_range` if given) what rule segments ask besides scores and
    purchases: language, birth month, enrolment date (local), tier name, as of now."""
    languages = [code for code, _name in settings.LANGUAGES]
    query = (
        _in_range(Member.objects.filter(status=MemberStatus.ACTIVE), id_range)
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


def consenting_id_array(id_range: IdRange | None = None) -> np.ndarray:
    """Ids of members whose newest e-mail consent grants it (for rule segments in a run), those
    in `id_range` if given."""
    # Without the records' default ordering: a sort of every record for nothing. The range
    # applies before the window over each member's records (Django keeps it inside).
    (ids,) = _columns(
        _in_range(consenting_member_ids().order_by(), id_range, "member_id"), ["bigint"]
    )
    return ids
