"""Writes of segmentation: recalculation runs, rule segments.

A run reads the purchase aggregate (one grouped query), scores every active member in pandas
(pipeline.compute_scores), evaluates the rule-based segments on that member table
(rules.rule_mask), writes scores and memberships with COPY and makes the run current in one
transaction. Readers always read through the current run, so they see the old snapshot until
that transaction commits and the new one after. On PostgreSQL both COPYs come before that
transaction, as rows of a run no reader sees yet: the scores on a second connection while this
one reads the rule segments' inputs, evaluates them and writes the memberships; elsewhere they
are part of it. A failure leaves the run visible as failed with its error and deletes whatever it
had written; so does the sweep that marks a run abandoned. Runs beyond the retention are
deleted afterwards by their own task.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty import events
from loyalty.outbox.services import outbox_enqueue
from loyalty.pgcopy import copy_binary
from members.models import User
from members.selectors import without_profiling_objectors

from .errors import RecalculationRunning
from .models import (
    MemberScore,
    RuleSegment,
    RuleSegmentMember,
    RunStage,
    RunStatus,
    SegmentationRun,
    SegmentationSettings,
)
from .pipeline import Parameters, compute_scores
from .rules import RuleNeeds, rule_mask, rule_needs, validate_rule
from .run_inputs import IdRange, consenting_id_array, member_attributes, run_inputs
from .selectors import dashboard_warm

logger = logging.getLogger(__name__)

# A run still "running" after this long lost its worker; the next start marks it failed.
STALE_AFTER = dt.timedelta(hours=3)

# (column, PostgreSQL type) of MemberScore as written by COPY; the run id is added.
_SCORE_TYPES = [
    ("member_id", "bigint"),
    ("recency_days", "integer"),
    ("frequency", "integer"),
    ("monetary", "double precision"),
    ("r_score", "smallint"),
    ("f_score", "smallint"),
    ("m_score", "smallint"),
    ("segment", "text"),
    ("quadrant", "text"),
    ("expected_purchases", "double precision"),
    ("p_alive", "double precision"),
    ("clv", "double precision"),
]


def run_start(*, triggered_by: User | None = None) -> SegmentationRun:
    """Register a new run; RecalculationRunning if one is in progress."""
    now = timezone.now()
    with transaction.atomic():
        # Locked: a run that finishes meanwhile is re-read after its commit and left alone.
        stale = list(
            SegmentationRun.objects.select_for_update()
            .filter(status=RunStatus.RUNNING, started_at__lt=now - STALE_AFTER)
            .values_list("pk", flat=True)
        )
        if stale:
            SegmentationRun.objects.filter(pk__in=stale).update(
                status=RunStatus.FAILED,
                finished_at=now,
                error=_("Abandoned: the worker stopped without finishing the run."),
            )
            _discard_rows(stale)
    try:
        with transaction.atomic():
            return SegmentationRun.objects.create(
                triggered_by=triggered_by, stage=RunStage.QUEUED, started_at=now
            )
    except IntegrityError as error:
        raise RecalculationRunning() from error


def run_request(*, triggered_by: User | None = None) -> SegmentationRun:
    """Register a run and hand it to a worker: the hand-off is recorded with the run (outbox),
    so a broker that is down delays the run instead of losing it."""
    with transaction.atomic():
        run = run_start(triggered_by=triggered_by)
        outbox_enqueue("segmentation.tasks.recalculate_segments", run.pk)
    return run


# Told each stage (its RunStage key) and the percentage done.
Progress = Callable[[RunStage, int], None]


def fail_run(run: SegmentationRun, error: Exception) -> None:
    """Mark `run` failed with `error` and delete whatever it had written."""
    logger.exception("segmentation run %s failed", run.pk)
    _discard_rows([run.pk])
    SegmentationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error=f"{type(error).__name__}: {error}\n\n{traceback.format_exc(limit=5)}",
    )


def recalculate(
    *,
    run: SegmentationRun | None = None,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> SegmentationRun:
    """Execute `run` (or a new one) to the end. Never raises for a failed calculation: the
    run is marked failed with the error and the previous run stays current. `progress` is
    told each stage and its percentage (the admin reads them from the run row)."""
    run = run or run_start()
    now = now or timezone.now()
    try:
        _execute(run, now, progress)
    except Exception as error:
        fail_run(run, error)
    run.refresh_from_db()
    if run.status == RunStatus.DONE:
        dashboard_warm(run=run)  # the dashboard's aggregates, cached: its first view is fast too
    return run


def _execute(run: SegmentationRun, now: dt.datetime, progress: Progress | None) -> None:
    def _stage(run: SegmentationRun, stage: RunStage, percent: int) -> None:
        SegmentationRun.objects.filter(pk=run.pk).update(stage=stage, progress=percent)
        if progress is not None:
            progress(stage, percent)

    settings = SegmentationSettings.load()
    parameters = run_parameters(settings)
    timings: dict[str, float] = {}

    def timed(name: str, function: Callable):
        began = time.perf_counter()
        result = function()
        timings[name] = round(time.perf_counter() - began, 3)
        return result

    segments = list(RuleSegment.objects.filter(is_active=True).order_by("pk"))
    needs = rule_needs([segment.rule for segment in segments])
    _stage(run, RunStage.READING, 5)
    window_start = now - dt.timedelta(days=settings.window_days)
    aggregates, member_ids = timed(
        "aggregate",
        lambda: run_inputs(now=now, window_start=window_start, recent_days=needs.days),
    )
    parallel = _parallel_allowed()
    with ThreadPoolExecutor(max_workers=1) as pool:
        _stage(run, RunStage.SCORING, 30)
        scores, info = timed("score", lambda: compute_scores(aggregates, member_ids, parameters))
        write_all_scores = functools.partial(write_scores, run, scores)
        scores_written: Future | None = None
        if parallel:
            # Staged: rows of a run nobody reads yet (readers go through the current run).
            # The scores are written on another connection from now on, while this one reads
            # what the rule segments ask of the members, evaluates them and writes the
            # memberships; made current below in one transaction and deleted again if the run
            # fails (recalculate). The pool waits for the write before leaving.
            scores_written = pool.submit(
                _on_own_connection(functools.partial(timed, "write_scores", write_all_scores))
            )
        _stage(run, RunStage.RULE_SEGMENTS, 60)
        memberships, info["rule_segments"] = timed(
            "rule_segments",
            lambda: _rule_memberships(segments, needs, scores, aggregates, _rule_inputs(needs)),
        )
        _stage(run, RunStage.WRITING, 70)
        write_members = functools.partial(write_memberships, run, memberships)
        if scores_written is not None:
            timed("write_rule_segments", write_members)
            scores_written.result()
    with transaction.atomic():
        if not parallel:
            timed("write_scores", write_all_scores)
            timed("write_rule_segments", write_members)
        previous_id = timed("swap", lambda: _replace_current_run(run))
        info.update(run_settings_info(settings, now))
        SegmentationRun.objects.filter(pk=run.pk).update(
            status=RunStatus.DONE,
            is_current=True,
            finished_at=timezone.now(),
            stage=RunStage.DONE,
            progress=100,
            member_count=info["members"],
            timings=timings,
            parameters=info,
        )
        if events.has_subscribers("segment.changed"):
            timed("segment_events", lambda: _tell_segment_changes(run.pk, previous_id))
        # Once per run, for set-based subscribers (the campaigns' segment-entry automations).
        events.emit(
            "segments.recalculated", member_id=None, run_id=run.pk, previous_run_id=previous_id
        )
        # Deleting an old snapshot (a million rows) is cleanup, not part of the swap: it
        # runs after the commit, in its own task, and never holds up the new run.
        transaction.on_commit(_prune_later)


def run_parameters(settings: SegmentationSettings) -> Parameters:
    """What the pipeline computes by, from the settings."""
    return Parameters(
        scale=settings.score_scale,
        horizon_months=settings.clv_horizon_months,
        monthly_discount_rate=float(settings.monthly_discount_rate),
        margin=float(settings.margin),
        purchase_model=settings.clv_purchase_model,
        loyalty_threshold=settings.loyalty_threshold,
        profitability_threshold=(
            float(settings.profitability_threshold)
            if settings.profitability_threshold is not None
            else None
        ),
        frequency_bands=settings.frequency_bands_for_scoring,
    )


def run_settings_info(settings: SegmentationSettings, now: dt.datetime) -> dict:
    """The settings a finished run records beside its counts."""
    info: dict = {
        "window_days": settings.window_days,
        "scale": settings.score_scale,
        "frequency_scoring": settings.frequency_scoring,
        "now": now.isoformat(),
    }
    if settings.uses_frequency_bands:
        info["frequency_bands"] = list(settings.frequency_bands)
    return info


def _parallel_allowed() -> bool:
    # Other connections only see committed rows, and SQLite (the embedded demo) has one writer.
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _on_own_connection(function: Callable) -> Callable:
    """`function` for a pool thread: it gets its own connection, closed afterwards."""

    def run():
        try:
            return function()
        finally:
            connection.close()

    return run


def _discard_rows(run_ids) -> None:
    """Delete the snapshot rows of runs that failed (written, never made current)."""
    MemberScore.objects.filter(run_id__in=run_ids).delete()
    RuleSegmentMember.objects.filter(run_id__in=run_ids).delete()


def _prune_later() -> None:
    outbox_enqueue("segmentation.tasks.prune_runs")


def _rule_inputs(
    needs: RuleNeeds, id_range: IdRange | None = None
) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """The member attributes and consenting ids (of `id_range`), if the rules ask for them."""
    return (
        member_attributes(id_range) if needs.attributes else None,
        consenting_id_array(id_range) if needs.consent else None,
    )


def _rule_memberships(
    segments: list[RuleSegment],
    needs: RuleNeeds,
    scores: pd.DataFrame,
    aggregates: pd.DataFrame,
    inputs: tuple[pd.DataFrame | None, np.ndarray | None],
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Every active rule segment evaluated on the run's member table (rules.rule_mask)."""
    attributes, consenting = inputs
    if not segments:
        return pd.DataFrame({"segment_id": [], "member_id": []}, dtype="int64"), {}
    window_columns = ["last_epoch"] + [
        f"{kind}_{d}" for d in sorted(needs.days) for kind in ("spend", "purchases")
    ]
    table = scores.merge(aggregates[["member_id", *window_columns]], on="member_id", how="left")
    for column in window_columns[1:]:
        table[column] = table[column].fillna(0)
    if attributes is not None:
        table = table.merge(attributes, on="member_id", how="left")
    if consenting is not None:
        table["consent"] = np.isin(table["member_id"].to_numpy(), consenting)
    member_ids = table["member_id"].to_numpy(dtype="int64")
    parts, counts = [], {}
    for segment in segments:
        selected = member_ids[rule_mask(segment.rule, table)]
        parts.append(
            pd.DataFrame({"segment_id": np.full(len(selected), segment.pk), "member_id": selected})
        )
        counts[segment.name] = len(selected)
    return pd.concat(parts, ignore_index=True), counts


def write_scores(run: SegmentationRun, scores: pd.DataFrame) -> int:
    """Bulk write of a run's scores: binary COPY on PostgreSQL, executemany elsewhere."""
    _bulk_insert(
        MemberScore._meta.db_table,
        [("run_id", "bigint", np.full(len(scores), run.pk, dtype="int64"))]
        + [(name, pgtype, scores[name].to_numpy()) for name, pgtype in _SCORE_TYPES],
    )
    return len(scores)


def write_memberships(run: SegmentationRun, memberships: pd.DataFrame) -> int:
    """Bulk write of a run's rule-segment memberships (segment_id, member_id)."""
    if len(memberships):
        _bulk_insert(
            RuleSegmentMember._meta.db_table,
            [
                ("run_id", "bigint", np.full(len(memberships), run.pk, dtype="int64")),
                ("segment_id", "bigint", memberships["segment_id"].to_numpy(dtype="int64")),
                ("member_id", "bigint", memberships["member_id"].to_numpy(dtype="int64")),
            ],
        )
    return len(memberships)


def _bulk_insert(table: str, columns: list[tuple[str, str, np.ndarray]]) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_binary(cursor.cursor, table, columns)
        return
    frame = pd.DataFrame({name: values for name, _type, values in columns})
    frame = frame.astype(object).where(frame.notna(), None)
    names = [name for name, _type, _values in columns]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
            list(frame.itertuples(index=False, name=None)),
        )


def _replace_current_run(run: SegmentationRun) -> int | None:
    """Un-mark the current run (the caller marks `run` current in the same transaction, so
    others see the old one until the commit); returns the run it replaces."""
    _analyze_snapshot()
    previous = SegmentationRun.objects.filter(is_current=True).exclude(pk=run.pk)
    previous_id = previous.values_list("pk", flat=True).first()
    previous.update(is_current=False)
    return previous_id


def _analyze_snapshot() -> None:
    """PostgreSQL: fresh statistics of the snapshot tables before anything joins the new run.
    Until autovacuum gets to them the planner takes the run just written for one row; it then
    joined two runs of a million members by a nested loop over the whole other run (the
    dashboard's transitions, the segment-entry automations: hours at 1M). ANALYZE samples a
    fixed number of rows, rows this transaction wrote included: well under a second."""
    if connection.vendor != "postgresql":
        return
    tables = (MemberScore._meta.db_table, RuleSegmentMember._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in tables))


def _tell_segment_changes(run_id: int, previous_id: int | None) -> None:
    """`segment.changed` for every member whose named segment or quadrant differs from the
    replaced run (or who is new in it); streamed, so a million movers never sit in memory.
    Members who object to profiling are not told about: the event hands their segment to
    partners' webhooks and campaign automations."""
    before = MemberScore.objects.filter(run_id=previous_id, member_id=OuterRef("member_id"))
    moved = (
        without_profiling_objectors(
            MemberScore.objects.filter(run_id=run_id), member_field="member_id"
        )
        .annotate(
            segment_before=Subquery(before.values("segment")[:1]),
            quadrant_before=Subquery(before.values("quadrant")[:1]),
        )
        .filter(
            Q(segment_before__isnull=True)
            | ~Q(segment=F("segment_before"))
            | ~Q(quadrant=F("quadrant_before"))
        )
        .values_list("member_id", "segment", "quadrant", "segment_before", "quadrant_before")
        .order_by()
    )
    for member_id, segment, quadrant, segment_before, quadrant_before in moved.iterator(
        chunk_size=5000
    ):
        events.emit(
            "segment.changed",
            member_id=member_id,
            run_id=run_id,
            segment=segment,
            quadrant=quadrant,
            segment_before=segment_before,
            quadrant_before=quadrant_before,
        )


def runs_prune() -> int:
    """Delete finished runs beyond the retention setting, keeping the current one; their
    scores and memberships go with them (fast-deleted in SQL)."""
    keep = SegmentationSettings.load().retention_runs
    finished = SegmentationRun.objects.exclude(status=RunStatus.RUNNING).filter(is_current=False)
    kept = list(finished.order_by("-started_at", "-pk").values_list("pk", flat=True)[: keep - 1])
    deleted, _by_model = finished.exclude(pk__in=kept).delete()
    return deleted


def rule_segment_save(*, segment: RuleSegment, rule: dict, user: User | None = None) -> RuleSegment:
    """Validate and store a rule segment (RuleInvalid names what is wrong)."""
    validate_rule(rule)
    segment.rule = rule
    if segment.pk is None and user is not None:
        segment.created_by = user
    segment.save()
    return segment
