"""Reads of the webhooks: who listens to what (cached), and what is due."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from loyalty import process_cache
from members.models import Member

from .models import DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint


def _subscribed_types_read() -> frozenset[str] | None:
    types: set[str] = set()
    for event_types in WebhookEndpoint.objects.filter(is_active=True).values_list(
        "event_types", flat=True
    ):
        if not event_types:
            return None
        types.update(event_types)
    return frozenset(types)


def subscribed_types() -> frozenset[str] | None:
    """The event types some active endpoint listens to; None when one listens to all.

    Every domain event asks this, so it is kept in memory (loyalty/process_cache.py; every save
    and delete of an endpoint calls `process_cache.changed`): with no endpoint it costs no query.
    """
    return process_cache.cached("webhooks:subscribed-types", _subscribed_types_read)


def anyone_subscribes(event_type: str) -> bool:
    """Whether some active endpoint wants this event (cached; see `subscribed_types`)."""
    if event_type not in EventType.values:
        return False
    types = subscribed_types()
    return types is None or event_type in types


def subscriptions_changed(*, update_fields=None, **kwargs) -> None:
    """Every process reads who listens again (receiver of the endpoint's save and delete
    signals), unless a save wrote only other fields (a failed delivery's count)."""
    if update_fields is None or {"is_active", "event_types"} & set(update_fields):
        process_cache.changed()


def endpoints_subscribed(event_type: str) -> list[WebhookEndpoint]:
    return [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(is_active=True).order_by("pk")
        if endpoint.subscribes_to(event_type)
    ]


def member_number(member_id: int | None) -> str | None:
    if member_id is None:
        return None
    return Member.objects.filter(pk=member_id).values_list("member_number", flat=True).first()


def due_delivery_ids(*, now: dt.datetime, limit: int) -> list[int]:
    """Pending deliveries whose time has come, to endpoints still active, oldest due first."""
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def deliveries_for_log() -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.select_related("event", "endpoint__partner")
