"""A paginator for admin lists of millions of rows: exact below a threshold, estimated above.

Plumbing (imports no domain model), like `admin_site`: every app's ModelAdmin may use it.
`COUNT(*)` over 10M purchases took 0.3 s and more with a filter; a program manager paging a
list needs to know "about 10 million", not the exact figure. So the paginator counts at most
`EXACT_UP_TO + 1` rows (a bounded count: cheap whatever the table's size); past that it takes
PostgreSQL's estimate: `pg_class.reltuples` for the whole table, the planner's row estimate
(EXPLAIN) for a filtered or searched list. `estimated` tells the template to say "about".
Other databases count exactly.
"""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

EXACT_UP_TO = 10_000


class EstimatedCountPaginator(Paginator):
    estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if connections[queryset.db].vendor != "postgresql":
            return super().count
        bounded = queryset.order_by()[: EXACT_UP_TO + 1].count()
        if bounded <= EXACT_UP_TO:
            return bounded
        self.estimated = True
        return max(estimate_count(queryset), EXACT_UP_TO + 1)


def estimate_count(queryset: QuerySet) -> int:
    """PostgreSQL's own idea of the row count: statistics, no scan."""
    connection = connections[queryset.db]
    with connection.cursor() as cursor:
        if not queryset.query.where and not queryset.query.distinct:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
            if row and row[0] >= 0:  # -1: never analysed
                return int(row[0])
        sql, params = queryset.order_by().query.sql_with_params()
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
