"""Background jobs of segmentation."""

from celery import shared_task

from . import services
from .errors import RecalculationRunning


@shared_task(acks_late=True)
def recalculate_segments(run_id: int | None = None) -> int | None:
    """Run a recalculation: the one the admin registered (`run_id`) or, on schedule, a new one.

    A scheduled start while another run is in progress is skipped, not queued twice.
    """
    if run_id is None:
        try:
            return services.recalculate().pk
        except RecalculationRunning:
            return None
    run = services.SegmentationRun.objects.get(pk=run_id)
    if run.status != services.RunStatus.RUNNING:
        return run.pk  # delivered twice (acks_late): the first delivery did the work
    return services.recalculate(run=run).pk


@shared_task(acks_late=True)
def prune_runs() -> int:
    """Delete snapshots beyond the retention (after each run; safe to run twice)."""
    return services.runs_prune()
