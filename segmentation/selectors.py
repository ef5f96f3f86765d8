"""Reads of segmentation: the purchase aggregate for a run, current scores, dashboards."""

from __future__ import annotations

import datetime as dt
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from django.db import connection

from loyalty.models import Purchase
from members.models import Member, MemberStatus

from .models import MemberScore, SegmentationRun

AGGREGATE_COLUMNS = [
    "member_id",
    "days_since_last",
    "frequency",
    "monetary",
    "purchases_total",
    "spend_total",
    "days_since_first",
    "first_spend",
]

# first_spend: the spend of the earliest purchase, found by the minimum of one bigint that
# packs the minute of purchase above the spend in cents (a row constructor or array per row
# would triple the query's time). Two purchases in the same minute: the smaller one counts.
_POSTGRES_AGGREGATE = """
SELECT member_id,
       date_part('epoch', %(now)s::timestamptz - max(purchased_at)) / 86400.0,
       count(*) FILTER (WHERE purchased_at > %(window_start)s::timestamptz),
       coalesce(sum(amount) FILTER (WHERE purchased_at > %(window_start)s::timestamptz), 0)
       - coalesce(sum(refunded_amount)
                  FILTER (WHERE purchased_at > %(window_start)s::timestamptz), 0),
       count(*),
       sum(amount) - sum(refunded_amount),
       date_part('epoch', %(now)s::timestamptz - min(purchased_at)) / 86400.0,
       (min(floor(date_part('epoch', purchased_at) / 60)::bigint * 10000000000
            + ((amount - refunded_amount) * 100)::bigint) %% 10000000000) / 100.0
FROM {purchase}
WHERE purchased_at <= %(now)s::timestamptz {part}
GROUP BY member_id
"""

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
         ORDER BY f.purchased_at, f.id LIMIT 1)
FROM {purchase} p
WHERE p.purchased_at <= %(now)s
GROUP BY p.member_id
"""


def _copy_out(query: str, params: dict) -> io.BytesIO:
    """The query's rows as CSV through COPY, on this thread's connection."""
    try:
        with connection.cursor() as cursor:
            sql = cursor.mogrify(query, params)
            if isinstance(sql, bytes):
                sql = sql.decode()
            # Serial plans (1M groups are slower through a parallel sort and gather merge) and
            # no JIT (its compile time is not earned back). Thread connections close below.
            scope = "LOCAL " if connection.in_atomic_block else ""
            cursor.execute(f"SET {scope}max_parallel_workers_per_gather = 0")
            cursor.execute(f"SET {scope}jit = off")
            buffer = io.BytesIO()
            with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    buffer.write(block)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connection.close()
    buffer.seek(0)
    return buffer


def purchase_aggregates(*, now: dt.datetime, window_start: dt.datetime) -> pd.DataFrame:
    """Per member with purchases up to `now`: the figures RFM and CLV need, in one query.

    days_since_last / days_since_first are fractional days; frequency and monetary count only
    the window (window_start, now]; *_total and first_spend cover the whole history. On
    PostgreSQL the rows stream out with COPY, which is several times faster than fetching.
    """
    table = Purchase._meta.db_table
    params = {"now": now, "window_start": window_start}
    if connection.vendor == "postgresql":
        if connection.in_atomic_block:  # other connections would not see this transaction
            parts = [""]
        else:  # two halves of the members on two connections: both cores aggregate
            parts = [f"AND member_id %% 2 = {half}" for half in (0, 1)]
        queries = [_POSTGRES_AGGREGATE.format(purchase=table, part=part) for part in parts]
        if len(queries) == 1:
            buffers = [_copy_out(queries[0], params)]
        else:
            with ThreadPoolExecutor(max_workers=len(queries)) as pool:
                buffers = list(pool.map(lambda query: _copy_out(query, params), queries))
        frame = pd.concat(
            [
                pd.read_csv(
                    buffer,
                    names=AGGREGATE_COLUMNS,
                    header=None,
                    dtype={"member_id": "int64", "frequency": "int64", "purchases_total": "int64"},
                )
                for buffer in buffers
            ],
            ignore_index=True,
        )
    else:
        query = _SQLITE_AGGREGATE.format(purchase=table)
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
            frame = pd.DataFrame(cursor.fetchall(), columns=AGGREGATE_COLUMNS)
    for column in ("monetary", "spend_total", "first_spend"):
        frame[column] = frame[column].astype("float64")
    return frame


def scored_member_ids() -> pd.Series:
    """The members a run scores: every active member, with or without purchases."""
    query = Member.objects.filter(status=MemberStatus.ACTIVE).values_list("pk").order_by("pk")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:  # a million ids: skip the ORM's per-row work
        cursor.execute(sql, params)
        ids = np.fromiter((row[0] for row in cursor.fetchall()), dtype="int64")
    return pd.Series(ids, name="member_id", dtype="int64")


def current_run() -> SegmentationRun | None:
    return SegmentationRun.objects.filter(is_current=True).first()


def member_current_score(*, member: Member) -> MemberScore | None:
    return MemberScore.objects.filter(member=member, run__is_current=True).first()
