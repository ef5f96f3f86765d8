"""Background jobs of segmentation."""

from celery import shared_task

from . import chunked, services
from .errors import RecalculationRunning


def _dispatch(run_id: int, number: int) -> None:
    recalculate_range.delay(run_id, number)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def recalculate_segments(run_id: int | None = None) -> int | None:
    """Run a recalculation: the one the admin registered (`run_id`) or, on schedule, a new one.

    The run is split by member-id range (chunked.py): this task computes the global facts and
    queues one recalculate_range per range; the last range swaps the run in. A scheduled start
    while another run is in progress is skipped, not queued twice; delivered again after the
    facts (acks_late), it hands on the ranges not done instead of starting over.
    """
    if run_id is None:
        try:
            run = services.run_start()
        except RecalculationRunning:
            return None
    else:
        run = services.SegmentationRun.objects.get(pk=run_id)
        if run.status != services.RunStatus.RUNNING:
            return run.pk  # delivered twice (acks_late): the first delivery did the work
        if "chunked" in run.parameters:
            chunked.run_resume(run, dispatch=_dispatch)
            return run.pk
    return chunked.recalculate_chunked(run=run, dispatch=_dispatch).pk


@shared_task(acks_late=True, reject_on_worker_lost=True)
def recalculate_range(run_id: int, number: int) -> bool:
    """Score and write one member-id range of a run (safe to deliver twice); the last range
    done swaps the run in."""
    return chunked.range_execute(run_id, number)


@shared_task(acks_late=True)
def resume_segments(run_id: int) -> list[int]:
    """Hand the ranges not done of a run left running to the workers again (the run page's
    Resume, manage.py resume_segments)."""
    run = services.SegmentationRun.objects.get(pk=run_id)
    return chunked.run_resume(run, dispatch=_dispatch)


@shared_task(acks_late=True)
def prune_runs() -> int:
    """Delete snapshots beyond the retention (after each run; safe to run twice)."""
    return services.runs_prune()
