"""Writes of a recalculation split by member-id range (docs/scaling.md).

1. run_prepare: the global facts, read range by range (pipeline.global_facts): the exact
   quantile thresholds of R, F and M, the CLV models fitted once on a seeded random sample of
   customers (SegmentationSettings.clv_sample_size), the matrix medians. They are stored on the
   run with one RunRange row per member-id range (SegmentationSettings.range_size).
2. range_execute, one task per range (tasks.recalculate_range, in parallel on several workers):
   reads its members' aggregates, scores, predicts, evaluates the rule segments and writes its
   rows (COPY on PostgreSQL) and marks its range done, in one transaction. Delivered again, it
   deletes its own partial rows first, and does nothing once its range is done.
3. run_finish, called by the range that finds no range left to do: checks that every range is
   done and swaps the run in (services._replace_current_run), as the single-process run does.

Until the swap readers see the previous run. A range that fails records its error and leaves
the run running, invisible and resumable (run_resume re-queues the ranges not done); a worker
that dies has its range task delivered again (acks_late, reject_on_worker_lost); a run left
running for services.STALE_AFTER is marked failed and its rows deleted by the next start.
Without a dispatcher (recalculate_chunked's default, and the embedded default's eager Celery)
the same code runs the ranges inline, one after the other.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import resource
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict

import pandas as pd
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty import events
from members.models import Member

from .models import (
    MemberScore,
    RuleSegment,
    RuleSegmentMember,
    RunRange,
    RunStage,
    RunStatus,
    SegmentationRun,
    SegmentationSettings,
)
from .pipeline import GlobalFacts, Parameters, compute_scores, global_facts
from .rules import rule_needs
from .run_inputs import IdRange, run_inputs
from .selectors import dashboard_warm
from .services import (
    Progress,
    _on_own_connection,
    _parallel_allowed,
    _prune_later,
    _replace_current_run,
    _rule_inputs,
    _rule_memberships,
    _tell_segment_changes,
    fail_run,
    run_parameters,
    run_settings_info,
    run_start,
    write_memberships,
    write_scores,
)

logger = logging.getLogger(__name__)

# The CLV sample is drawn with this seed (recorded on the run): the same data, the same sample.
CLV_SAMPLE_SEED = 20051

# Ranges the facts step reads ahead (each on two connections, run_inputs) while it works on
# the one before.
READ_AHEAD = 1

# Hands a range (run id, range number) to a worker.
Dispatch = Callable[[int, int], None]


def member_id_ranges(size: int) -> list[IdRange]:
    """Consecutive ranges of `size` member ids from the lowest to the highest id."""
    bounds = Member.objects.aggregate(first=Min("pk"), last=Max("pk"))
    if bounds["first"] is None:
        return []
    first, last = int(bounds["first"]), int(bounds["last"])
    return [(start, min(start + size - 1, last)) for start in range(first, last + 1, size)]


def recalculate_chunked(
    *,
    run: SegmentationRun | None = None,
    now: dt.datetime | None = None,
    dispatch: Dispatch | None = None,
    progress: Progress | None = None,
) -> SegmentationRun:
    """Execute `run` (or a new one) range by range. Without `dispatch` the ranges run here in
    sequence and, like services.recalculate, a failure marks the run failed (the previous run
    stays current); `progress` is then told each stage and its percentage, as the run row
    records them. With `dispatch` each range not done is handed to it after the facts; a
    range that fails then leaves the run running and resumable (run_resume)."""
    run = run or run_start()

    def tell() -> None:  # the stage and percentage the run row records
        if progress is not None:
            run.refresh_from_db(fields=["stage", "progress"])
            progress(RunStage(run.stage), run.progress)

    try:
        run_prepare(run, now or timezone.now())
    except Exception as error:
        fail_run(run, error)
        run.refresh_from_db()
        return run
    numbers = list(run.ranges.filter(done=False).values_list("number", flat=True))
    if dispatch is None:
        try:
            tell()
            for number in numbers:
                range_execute(run.pk, number, raise_errors=True)
                tell()
            run_finish(run.pk)
        except Exception as error:
            fail_run(run, error)
    elif numbers:
        _hand_on(run.pk, numbers, dispatch)
    else:
        run_finish(run.pk)
    run.refresh_from_db()
    return run


def _hand_on(run_id: int, numbers: list[int], dispatch: Dispatch) -> None:
    """Hand the ranges to `dispatch`; if it fails (the broker is away) the run says so and
    stays resumable."""
    try:
        for number in numbers:
            dispatch(run_id, number)
    except Exception as error:
        logger.exception("handing on the ranges of segmentation run %s failed", run_id)
        SegmentationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            error=_("The ranges could not be handed to the workers; resume the run.")
            + f"\n\n{type(error).__name__}: {error}"
        )


def _parts(
    ranges: list[IdRange], now: dt.datetime, window_start: dt.datetime
) -> Iterator[tuple[pd.DataFrame, pd.Series]]:
    """Each range's aggregate and member ids, in order. On PostgreSQL (outside a transaction)
    the next range is read on other connections while this thread works on the one before:
    at most two ranges in memory, whatever the member count."""

    def read(id_range: IdRange) -> tuple[pd.DataFrame, pd.Series]:
        return run_inputs(now=now, window_start=window_start, id_range=id_range)

    if not _parallel_allowed():
        for id_range in ranges:
            yield read(id_range)
        return
    with ThreadPoolExecutor(max_workers=READ_AHEAD) as pool:
        pending: deque[Future] = deque()
        for id_range in ranges:
            pending.append(pool.submit(_on_own_connection(functools.partial(read, id_range))))
            if len(pending) > READ_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def run_prepare(run: SegmentationRun, now: dt.datetime) -> None:
    """The global facts of `run` and its ranges, stored on it (a second delivery starts over)."""
    began = time.perf_counter()
    settings = SegmentationSettings.load()
    parameters = run_parameters(settings)
    segments = list(RuleSegment.objects.filter(is_active=True).order_by("pk"))
    needs = rule_needs([segment.rule for segment in segments])
    window_start = now - dt.timedelta(days=settings.window_days)
    ranges = member_id_ranges(settings.range_size)
    SegmentationRun.objects.filter(pk=run.pk).update(stage=RunStage.READING, progress=5)
    facts, info = global_facts(
        _parts(ranges, now, window_start),
        parameters,
        sample_size=settings.clv_sample_size,
        seed=CLV_SAMPLE_SEED,
    )
    state = {
        "now": now.isoformat(),
        "window_start": window_start.isoformat(),
        "recent_days": sorted(needs.days),
        # As they are now: a rule edited during the run changes the next run, not a range.
        "segments": [[segment.pk, segment.name, segment.rule] for segment in segments],
        "parameters": asdict(parameters),
        "facts": facts.as_json(),
        "info": info | run_settings_info(settings, now),
        "range_size": settings.range_size,
        "facts_process": _process(),
    }
    with transaction.atomic():
        RunRange.objects.filter(run=run).delete()
        _discard_range_rows(run.pk, None)
        RunRange.objects.bulk_create(
            RunRange(run=run, number=number, first_id=first, last_id=last)
            for number, (first, last) in enumerate(ranges, 1)
        )
        SegmentationRun.objects.filter(pk=run.pk).update(
            stage=RunStage.SCORING,
            progress=30,
            parameters={"chunked": state},
            timings={"facts": round(time.perf_counter() - began, 3)},
        )
    run.refresh_from_db()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far in MB: VmHWM on Linux (ru_maxrss carries the
    parent's peak over fork and exec: a worker started by a big process would report that)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _process() -> dict:
    """This process and its peak memory so far, for the run page and the bench."""
    return {"pid": os.getpid(), "peak_rss_mb": round(peak_rss_mb())}


def _discard_range_rows(run_id: int, id_range: IdRange | None) -> None:
    """Delete a run's rows (of the members in `id_range`): a range's partial write."""
    for model in (MemberScore, RuleSegmentMember):
        rows = model.objects.filter(run_id=run_id)
        if id_range is not None:
            rows = rows.filter(member_id__gte=id_range[0], member_id__lte=id_range[1])
        rows.delete()


def _still_running(run_id: int) -> bool:
    """Whether the run is still running, holding it so until the commit (FOR SHARE on
    PostgreSQL: ranges write side by side, the stale-run sweep and the swap wait for them)."""
    table = SegmentationRun._meta.db_table
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {table} WHERE id = %s AND status = %s{lock}", [run_id, "running"]
        )
        return cursor.fetchone() is not None


def range_execute(run_id: int, number: int, *, raise_errors: bool = False) -> bool:
    """Score and write range `number` of run `run_id`; True if the range is done (now or
    before). The last range done swaps the run in. An error is recorded on the range and the
    run (which stays running and resumable) unless `raise_errors`."""
    run = SegmentationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).first()
    part = RunRange.objects.filter(run_id=run_id, number=number).first()
    if run is None or part is None or "chunked" not in run.parameters:
        return False  # finished, failed or started over meanwhile
    if part.done:
        return True
    began = time.perf_counter()
    id_range = (part.first_id, part.last_id)
    try:
        state = run.parameters["chunked"]
        values = dict(state["parameters"])
        if values["frequency_bands"] is not None:
            values["frequency_bands"] = tuple(values["frequency_bands"])
        parameters = Parameters(**values)
        facts = GlobalFacts.from_json(state["facts"])
        aggregates, member_ids = run_inputs(
            now=dt.datetime.fromisoformat(state["now"]),
            window_start=dt.datetime.fromisoformat(state["window_start"]),
            recent_days=state["recent_days"],
            id_range=id_range,
        )
        scores, info = compute_scores(aggregates, member_ids, parameters, facts)
        segments = [
            RuleSegment(pk=pk, name=name, rule=rule) for pk, name, rule in state["segments"]
        ]
        needs = rule_needs([segment.rule for segment in segments])
        memberships, rule_counts = _rule_memberships(
            segments, needs, scores, aggregates, _rule_inputs(needs, id_range)
        )
        del aggregates
        with transaction.atomic():
            if not _still_running(run_id):
                return False
            part = RunRange.objects.select_for_update().get(pk=part.pk)
            if part.done:  # another delivery finished it meanwhile
                return True
            _discard_range_rows(run_id, id_range)
            write_scores(run, scores)
            write_memberships(run, memberships)
            part.done = True
            part.rows = len(scores)
            part.error = ""
            part.finished_at = timezone.now()
            part.counts = {
                "members": info["members"],
                "with_purchases": info["with_purchases"],
                "rule_segments": rule_counts,
                "seconds": round(time.perf_counter() - began, 3),
                **_process(),
            }
            part.save()
    except Exception as error:
        if raise_errors:
            raise
        logger.exception("range %s of segmentation run %s failed", number, run_id)
        text = f"{type(error).__name__}: {error}\n\n{traceback.format_exc(limit=5)}"
        RunRange.objects.filter(pk=part.pk, done=False).update(error=text)
        SegmentationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            error=_("Range %(number)s failed; resume the run to retry it.") % {"number": number}
            + "\n\n"
            + text
        )
        return False
    ranges = RunRange.objects.filter(run_id=run_id)
    total, left = ranges.count(), ranges.filter(done=False).count()
    SegmentationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        stage=RunStage.WRITING, progress=min(99, 30 + 70 * (total - left) // max(total, 1))
    )
    if left == 0:
        run_finish(run_id)
    return True


def run_finish(run_id: int) -> bool:
    """Swap the run in once every range is done; True if this call did."""
    began = time.perf_counter()
    with transaction.atomic():
        run = SegmentationRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.RUNNING or "chunked" not in run.parameters:
            return False
        ranges = list(run.ranges.order_by("number"))
        if any(not part.done for part in ranges):
            return False
        state = run.parameters["chunked"]
        info = dict(state["info"])
        info["members"] = sum(part.rows for part in ranges)
        info["with_purchases"] = sum(part.counts.get("with_purchases", 0) for part in ranges)
        segment_counts: dict[str, int] = {}
        for part in ranges:
            for name, count in part.counts.get("rule_segments", {}).items():
                segment_counts[name] = segment_counts.get(name, 0) + count
        info["rule_segments"] = segment_counts
        info["chunks"] = {
            "ranges": len(ranges),
            "range_size": state["range_size"],
            "rfm_cuts": state["facts"]["cuts"],
            "facts_process": state["facts_process"],
            "range_processes": [
                {
                    "range": part.number,
                    **{key: part.counts.get(key) for key in ("pid", "peak_rss_mb", "seconds")},
                }
                for part in ranges
            ],
        }
        previous_id = _replace_current_run(run)
        timings = dict(run.timings)
        timings["ranges"] = round(sum(part.counts.get("seconds", 0.0) for part in ranges), 3)
        timings["swap"] = round(time.perf_counter() - began, 3)
        SegmentationRun.objects.filter(pk=run.pk).update(
            status=RunStatus.DONE,
            is_current=True,
            finished_at=timezone.now(),
            stage=RunStage.DONE,
            progress=100,
            error="",
            member_count=info["members"],
            timings=timings,
            parameters=info,
        )
        if events.has_subscribers("segment.changed"):
            _tell_segment_changes(run.pk, previous_id)
        transaction.on_commit(_prune_later)
    run.refresh_from_db()
    dashboard_warm(run=run)
    return True


def run_resume(run: SegmentationRun, *, dispatch: Dispatch | None = None) -> list[int]:
    """Carry on a run left running (a range failed, a worker or the broker was lost): hand the
    ranges not done to `dispatch` (None: execute them here, in sequence), or swap it in if
    none is left; a run that never got its facts starts over. Returns the ranges handed on."""
    if run.status != RunStatus.RUNNING:
        return []
    if "chunked" not in run.parameters:
        recalculate_chunked(run=run, dispatch=dispatch)
        return list(run.ranges.values_list("number", flat=True))
    pending = run.ranges.filter(done=False)
    pending.update(error="")
    SegmentationRun.objects.filter(pk=run.pk).update(error="")
    numbers = list(pending.order_by("number").values_list("number", flat=True))
    if dispatch is None:
        for number in numbers:
            range_execute(run.pk, number)
    else:
        _hand_on(run.pk, numbers, dispatch)
    if not numbers:
        run_finish(run.pk)
    return numbers


def runs_to_resume() -> list[SegmentationRun]:
    """Runs left running with an error (a range failed, the hand-off failed): what the run
    page offers to resume."""
    return list(SegmentationRun.objects.filter(status=RunStatus.RUNNING).exclude(error=""))
