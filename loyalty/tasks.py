"""Scheduled jobs of the program core; each is safe to run twice."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def expire_points() -> int:
    return services.points_expire()


@shared_task(acks_late=True)
def recalculate_tiers() -> int:
    return services.tiers_recalculate_all()


@shared_task(acks_late=True)
def rollup_kpis() -> str:
    """Hourly: the KPI page's daily rollups up to today's midnight (a no-op once done)."""
    from .kpis import kpi_rollup

    return kpi_rollup().complete_until.isoformat()


@shared_task(acks_late=True)
def check_ledger_consistency() -> int:
    return services.ledger_consistency_check().mismatch_count


@shared_task(acks_late=True)
def run_purchase_import(job_id: int) -> None:
    """Run a queued purchase import once; a second delivery finds it claimed and does nothing
    (and the rows themselves are idempotent: a re-run creates nothing twice)."""
    from .imports import purchase_import_claim, purchase_import_run

    job = purchase_import_claim(job_id=job_id)
    if job is not None:
        purchase_import_run(job=job)
