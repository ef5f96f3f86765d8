"""Reads of segmentation: the purchase aggregate for a run, current scores, dashboards."""

from __future__ import annotations

import datetime as dt
import io

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

_POSTGRES_AGGREGATE = """
SELECT member_id,
       EXTRACT(EPOCH FROM (%(now)s::timestamptz - max(purchased_at))) / 86400.0,
       count(*) FILTER (WHERE purchased_at > %(window_start)s::timestamptz),
       coalesce(sum(amount - refunded_amount)
                FILTER (WHERE purchased_at > %(window_start)s::timestamptz), 0),
       count(*),
       sum(amount - refunded_amount),
       EXTRACT(EPOCH FROM (%(now)s::timestamptz - min(purchased_at))) / 86400.0,
       (min(ARRAY[EXTRACT(EPOCH FROM purchased_at)::numeric, amount - refunded_amount]))[2]
FROM {purchase}
WHERE purchased_at <= %(now)s::timestamptz
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


def purchase_aggregates(*, now: dt.datetime, window_start: dt.datetime) -> pd.DataFrame:
    """Per member with purchases up to `now`: the figures RFM and CLV need, in one query.

    days_since_last / days_since_first are fractional days; frequency and monetary count only
    the window (window_start, now]; *_total and first_spend cover the whole history. On
    PostgreSQL the rows stream out with COPY, which is several times faster than fetching.
    """
    table = Purchase._meta.db_table
    params = {"now": now, "window_start": window_start}
    if connection.vendor == "postgresql":
        query = _POSTGRES_AGGREGATE.format(purchase=table)
        with connection.cursor() as cursor:
            sql = cursor.mogrify(query, params)
            if isinstance(sql, bytes):
                sql = sql.decode()
            buffer = io.BytesIO()
            with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    buffer.write(block)
        buffer.seek(0)
        frame = pd.read_csv(
            buffer,
            names=AGGREGATE_COLUMNS,
            header=None,
            dtype={"member_id": "int64", "frequency": "int64", "purchases_total": "int64"},
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
    ids = (
        Member.objects.filter(status=MemberStatus.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return pd.Series(list(ids.iterator(chunk_size=50_000)), name="member_id", dtype="int64")


def current_run() -> SegmentationRun | None:
    return SegmentationRun.objects.filter(is_current=True).first()


def member_current_score(*, member: Member) -> MemberScore | None:
    return MemberScore.objects.filter(member=member, run__is_current=True).first()
