"""The outbox's periodic sweep (scheduled every minute by celery beat)."""

from celery import shared_task

from .services import outbox_sweep


@shared_task(acks_late=True)
def sweep() -> int:
    return outbox_sweep()
