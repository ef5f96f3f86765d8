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
def check_ledger_consistency() -> int:
    return services.ledger_consistency_check().mismatch_count
