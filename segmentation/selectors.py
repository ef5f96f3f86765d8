"""Reads of segmentation for pages, the API and other apps: the current run, a member's
scores and rule segments, segment members, dashboards, exports (one query or a few each).

What a recalculation reads in bulk (the purchase aggregate, attributes, consent) is in
run_inputs.py."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Avg,
    Case,
    Count,
    F,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Least
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from loyalty.formats import money_text, points_text
from members.models import Member, MemberStatus
from members.selectors import (
    profiling_objection,
    without_profiling_objectors,
    without_profiling_objectors_all_at_once,
)

from .errors import SegmentNotFound
from .models import (
    MemberScore,
    Quadrant,
    RuleSegment,
    RuleSegmentMember,
    RunStatus,
    Segment,
    SegmentationRun,
)

# A finished run's scores do not change, so the dashboard's aggregates over them (each a scan
# of every member's score: 0.2-0.4 s at a million members) are kept in the cache, keyed by
# the run, and filled by the task that ran it (`dashboard_warm`); pages shape them per request
# in the reader's language. A week: the dashboard shows recent runs.
RUN_FACTS_SECONDS = 7 * 24 * 3600


def _run_facts(key: str, *runs: SegmentationRun, compute) -> list:
    """`compute()`'s rows for finished runs, from the cache when there; computed each time
    for a run still running."""
    if any(run.status != RunStatus.DONE for run in runs):
        return compute()
    name = (
        "segmentation:facts:"
        + key
        + ":"
        + ":".join(f"{run.pk}-{run.started_at.timestamp()}" for run in runs)
    )
    rows = cache.get(name)
    if rows is None:
        rows = compute()
        cache.set(name, rows, RUN_FACTS_SECONDS)
    return rows


def dashboard_warm(*, run: SegmentationRun) -> None:
    """Fill the cache with the dashboard's figures of `run` and its move from the run
    before (the task that ran it calls this, so the first view is fast too)."""
    segment_summary(run=run)
    quadrant_summary(run=run)
    rf_heatmap(run=run)
    value_distributions(run=run)
    before = finished_runs().filter(started_at__lt=run.started_at).first()
    if before is not None:
        transitions(before=before, after=run)


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


def member_targeting_rule_segments(*, member: Member) -> list[RuleSegment]:
    """The rule segments that may be used to target the member (segment-limited rewards,
    offers): none when the member objects to profiling, else `member_rule_segments`."""
    if profiling_objection(member=member):
        return []
    return member_rule_segments(member=member)


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
    all_at_once: bool = False,
) -> QuerySet[Member]:
    """Active members in any of the named segments, quadrants or rule segments of the current
    run: the one entry point for rewards limited to segments and campaign targeting. Members
    who object to profiling are left out (as of now: an objection or its withdrawal counts at
    once, without waiting for a run): with `all_at_once`, for a set read whole (a campaign's
    audience), by one anti-join rather than a probe per member."""
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
    members = Member.objects.filter(condition, status=MemberStatus.ACTIVE)
    if all_at_once:
        return without_profiling_objectors_all_at_once(members)
    return without_profiling_objectors(members)


# --- the partner API: segments with their sizes, and one segment's members ----------------

SEGMENT_KINDS = ("rfm", "quadrant", "rule")


@dataclass(frozen=True)
class SegmentSize:
    kind: str  # rfm | quadrant | rule
    key: str  # the segment's or quadrant's key, or the rule segment's id
    name: str
    members: int


def _active_scores(run: SegmentationRun) -> QuerySet[MemberScore]:
    return MemberScore.objects.filter(run=run, member__status=MemberStatus.ACTIVE)


def segment_sizes(*, run: SegmentationRun | None) -> list[SegmentSize]:
    """Every named segment, quadrant and active rule segment with its active members in `run`
    (zero without a run): three grouped queries, whatever the number of members."""
    by_segment: dict[str, int] = {}
    by_quadrant: dict[str, int] = {}
    by_rule: dict[int, int] = {}
    if run is not None:
        scores = _active_scores(run)
        by_segment = dict(
            scores.values("segment").annotate(n=Count("pk")).values_list("segment", "n").order_by()
        )
        by_quadrant = dict(
            scores.values("quadrant")
            .annotate(n=Count("pk"))
            .values_list("quadrant", "n")
            .order_by()
        )
        by_rule = dict(
            RuleSegmentMember.objects.filter(run=run, member__status=MemberStatus.ACTIVE)
            .values("segment_id")
            .annotate(n=Count("pk"))
            .values_list("segment_id", "n")
            .order_by()
        )
    return [
        *(
            SegmentSize("rfm", segment.value, str(segment.label), by_segment.get(segment.value, 0))
            for segment in Segment
        ),
        *(
            SegmentSize(
                "quadrant", quadrant.value, str(quadrant.label), by_quadrant.get(quadrant.value, 0)
            )
            for quadrant in Quadrant
        ),
        *(
            SegmentSize("rule", str(rule.pk), rule.name, by_rule.get(rule.pk, 0))
            for rule in RuleSegment.objects.filter(is_active=True).order_by("name")
        ),
    ]


def segment_members(*, run: SegmentationRun | None, kind: str, key: str) -> QuerySet:
    """The active members of one segment, quadrant or rule segment in `run`, as rows of
    `member_id` and `member_number`, for paginating in member id order (the primary keys'
    order): never loaded whole. SegmentNotFound for an unknown kind or key.

    Members who object to profiling are left out (their objection as of now); the segment's
    size in `segment_sizes` still counts them: a number names nobody."""
    rows: QuerySet
    if kind == "rfm" and key in Segment.values:
        rows = MemberScore.objects.filter(segment=key)
    elif kind == "quadrant" and key in Quadrant.values:
        rows = MemberScore.objects.filter(quadrant=key)
    elif kind == "rule" and key.isdigit() and RuleSegment.objects.filter(pk=int(key)).exists():
        rows = RuleSegmentMember.objects.filter(segment_id=int(key))
    else:
        raise SegmentNotFound()
    rows = rows.filter(run=run, member__status=MemberStatus.ACTIVE) if run else rows.none()
    rows = without_profiling_objectors(rows, member_field="member_id")
    return rows.values("member_id", member_number=F("member__member_number"))


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
        for row in _run_facts(
            "segments",
            run,
            compute=lambda: list(
                MemberScore.objects.filter(run=run)
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
            ),
        )
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
        for row in _run_facts(
            "heatmap",
            run,
            compute=lambda: list(
                MemberScore.objects.filter(run=run, r_score__isnull=False)
                .values("r_score", "f_score")
                .annotate(members=Count("pk"))
                .order_by()
            ),
        )
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
        for row in _run_facts(
            "quadrants",
            run,
            compute=lambda: list(
                MemberScore.objects.filter(run=run)
                .values("quadrant")
                .annotate(
                    members=Count("pk"),
                    revenue=Sum("monetary"),
                    avg_clv=Avg("clv"),
                    total_clv=Sum("clv"),
                )
                .order_by()
            ),
        )
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

    def compute() -> list:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT coalesce(old.segment, ''), new.segment, count(*) FROM {table} new "
                f"LEFT JOIN {table} old ON old.member_id = new.member_id AND old.run_id = %s "
                "WHERE new.run_id = %s GROUP BY 1, 2",
                [before.pk, after.pk],
            )
            return [tuple(row) for row in cursor.fetchall()]

    counts = {
        (old, new): count
        for old, new, count in _run_facts("transitions", before, after, compute=compute)
    }
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
        for row in _run_facts(
            "p_alive",
            run,
            compute=lambda: list(
                scores.filter(p_alive__isnull=False)
                .annotate(band=Least(Cast(F("p_alive") * 10, IntegerField()), Value(9)))
                .values("band")
                .annotate(members=Count("pk"))
                .order_by()
            ),
        )
    }
    whens = [When(clv__lt=upper, then=Value(index)) for index, upper in enumerate(CLV_BINS[1:])]
    clv_counts = {
        row["band"]: row["members"]
        for row in _run_facts(
            "clv",
            run,
            compute=lambda: list(
                scores.filter(clv__isnull=False)
                .annotate(band=Case(*whens, default=Value(len(CLV_BINS) - 1)))
                .values("band")
                .annotate(members=Count("pk"))
                .order_by()
            ),
        )
    }
    clv_labels = [
        f"{money_text(low, decimals=0)}-{points_text(high)}"
        for low, high in itertools.pairwise(CLV_BINS)
    ] + [f"{money_text(CLV_BINS[-1], decimals=0)}+"]
    return {
        "p_alive_labels": [
            f"{number_format(band / 10, 1)}-{number_format((band + 1) / 10, 1)}"
            for band in range(10)
        ],
        "p_alive": [alive.get(band, 0) for band in range(10)],
        "clv_labels": clv_labels,
        "clv": [clv_counts.get(band, 0) for band in range(len(CLV_BINS))],
    }


# Rows of a segment export fetched at a time (a server-side cursor on PostgreSQL): the export
# holds this many in memory whatever the segment's size.
EXPORT_CHUNK_ROWS = 5000


def export_rows(
    *,
    run: SegmentationRun,
    segment: str | None = None,
    quadrant: str | None = None,
    rule_segment: RuleSegment | None = None,
):
    """The members of one segment in `run`, with their scores, streamed for a CSV export.
    Members who object to profiling (as of now) are left out: the export names people."""
    scores = without_profiling_objectors(
        MemberScore.objects.filter(run=run), member_field="member_id"
    )
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
        .iterator(chunk_size=EXPORT_CHUNK_ROWS)
    )
