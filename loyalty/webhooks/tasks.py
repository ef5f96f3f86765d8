"""Webhook tasks: thin, idempotent (a delivery row is claimed before it is sent)."""

from celery import shared_task

from . import services


@shared_task(acks_late=True)
def deliver(delivery_id: int) -> str:
    """Send one delivery now (handed over by the outbox after the event's commit)."""
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task(acks_late=True)
def deliver_due() -> int:
    """Every minute (celery beat): retries that are due, and what the broker never got."""
    return services.deliver_due()


@shared_task(acks_late=True)
def send_endpoint_disabled_email(endpoint_id: int) -> bool:
    return services.endpoint_disabled_notify(endpoint_id=endpoint_id)
