"""Reads of the webhooks: who listens to what (cached), and what is due."""

from __future__ import annotations

import datetime as dt

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet

from members.models import Member

from .models import DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint

SUBSCRIPTIONS_CACHE_KEY = "webhooks:subscriptions:v1"
# A bound on staleness should an invalidation be missed (saves invalidate at once).
SUBSCRIPTIONS_CACHE_SECONDS = 60


def subscribed_types() -> frozenset[str] | None:
    """The event types some active endpoint listens to; None when one listens to all.

    Every domain event asks this, so it is cached: with no endpoint it costs no query.
    """
    cached = cache.get(SUBSCRIPTIONS_CACHE_KEY)
    if cached is None:
        types: set[str] = set()
        listens_to_all = False
        for event_types in WebhookEndpoint.objects.filter(is_active=True).values_list(
            "event_types", flat=True
        ):
            if not event_types:
                listens_to_all = True
            types.update(event_types or ())
        cached = {"all": listens_to_all, "types": sorted(types)}
        cache.set(SUBSCRIPTIONS_CACHE_KEY, cached, SUBSCRIPTIONS_CACHE_SECONDS)
    return None if cached["all"] else frozenset(cached["types"])


def anyone_subscribes(event_type: str) -> bool:
    """Whether some active endpoint wants this event (cached; see `subscribed_types`)."""
    if event_type not in EventType.values:
        return False
    types = subscribed_types()
    return types is None or event_type in types


def subscriptions_changed(**kwargs) -> None:
    """Forget the cached subscriptions now and again after the commit (signal receiver)."""
    cache.delete(SUBSCRIPTIONS_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(SUBSCRIPTIONS_CACHE_KEY))


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
