"""Webhook endpoints, recording events for them, and delivering them (Standard Webhooks 1.0).

Guarantee: a message recorded with a committed change is delivered to each subscribed endpoint
at least once (more than once only if a worker dies between the partner's answer and writing it
down: partners deduplicate by `webhook-id`), never by two senders at once (a claim on the
delivery row), retried with backoff for about a day and then marked failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from standardwebhooks import Webhook

from loyalty.errors import Conflict, ValidationFailed
from loyalty.events import DomainEvent
from loyalty.models import Partner
from loyalty.outbox.services import outbox_enqueue
from members.emails import send_templated_email

from . import selectors, transport
from .models import (
    TEST_EVENT_TYPE,
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    new_secret,
)

logger = logging.getLogger(__name__)

DELIVER_TASK = "loyalty.webhooks.tasks.deliver"
DISABLED_EMAIL_TASK = "loyalty.webhooks.tasks.send_endpoint_disabled_email"

# The wait after each failed attempt (as Svix does): 8 attempts over about 28 hours.
RETRY_DELAYS = (
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# Each wait is stretched or shrunk by up to this share, so retries after an outage spread out.
JITTER = 0.1
# An endpoint that failed this many attempts in a row, over at least this long, is disabled.
DISABLE_AFTER_FAILURES = 5
DISABLE_AFTER_FAILING_FOR = dt.timedelta(hours=24)
URL_MAX_LENGTH = 500  # WebhookEndpoint.url
# A claimed delivery is left alone this long (far above the HTTP timeout).
CLAIM_LEASE = dt.timedelta(seconds=60)
# A rotated secret keeps signing (next to the new one) this long.
PREVIOUS_SECRET_VALIDITY = dt.timedelta(hours=24)
# One run of the periodic task sends at most this many, within about this many seconds.
DUE_BATCH = 500
DUE_TIME_BUDGET_SECONDS = 50.0


class EndpointInactive(Conflict):
    code = "webhook_endpoint_inactive"
    default_message = _("This webhook endpoint is disabled; enable it first.")


class UnknownEventType(ValidationFailed):
    code = "webhook_unknown_event_type"
    field = "event_types"


# --- endpoints ------------------------------------------------------------------------------


def event_types_checked(event_types: Iterable[str] | None) -> list[str]:
    """The subscribed types in the documented order; unknown ones are refused."""
    if isinstance(event_types, str):
        raise UnknownEventType(_("Event types must be a list."))
    wanted = list(event_types or ())
    unknown = sorted(str(name) for name in wanted if name not in EventType.values)
    if unknown:
        raise UnknownEventType(_("Unknown event types: %(names)s.") % {"names": ", ".join(unknown)})
    return [name for name in EventType.values if name in wanted]


def url_checked(url: str) -> str:
    """The URL if webhooks may be sent there (see `transport`), else UnsafeTarget."""
    url = (url or "").strip()
    if len(url) > URL_MAX_LENGTH:
        raise transport.UnsafeTarget(_("The URL is too long."))
    transport.target_check(url)
    return url


@transaction.atomic
def endpoint_create(
    *, partner: Partner, url: str, event_types: Iterable[str] = (), description: str = ""
) -> WebhookEndpoint:
    """A new endpoint of `partner` with a fresh secret; nothing is created if the URL is unsafe."""
    return WebhookEndpoint.objects.create(
        partner=partner,
        url=url_checked(url),
        event_types=event_types_checked(event_types),
        description=description.strip()[:200],
    )


@transaction.atomic
def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str,
    event_types: Iterable[str] = (),
    description: str = "",
    is_active: bool = True,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.url = url_checked(url)
    endpoint.event_types = event_types_checked(event_types)
    endpoint.description = description.strip()[:200]
    if is_active and not endpoint.is_active:
        _reactivate(endpoint)
    elif not is_active and endpoint.is_active:
        endpoint.is_active = False
        endpoint.disabled_at = timezone.now()
        endpoint.disabled_reason = str(_("Disabled by hand."))
    endpoint.save()
    return endpoint


def _reactivate(endpoint: WebhookEndpoint) -> None:
    endpoint.is_active = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.consecutive_failures = 0
    endpoint.failing_since = None


@transaction.atomic
def endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Enable a disabled endpoint; its pending deliveries are tried again from now on."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if not endpoint.is_active:
        _reactivate(endpoint)
        endpoint.save()
        WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            next_attempt_at=timezone.now()
        )
    return endpoint


@transaction.atomic
def secret_rotate(*, endpoint: WebhookEndpoint, now: dt.datetime | None = None) -> WebhookEndpoint:
    """A new secret; the old one keeps signing next to it for PREVIOUS_SECRET_VALIDITY."""
    now = now or timezone.now()
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + PREVIOUS_SECRET_VALIDITY
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint


# --- recording events -----------------------------------------------------------------------


def on_domain_event(event: DomainEvent) -> None:
    """The `loyalty.events` subscriber: runs inside the transaction of the change."""
    if event.name not in EventType.values or not selectors.anyone_subscribes(event.name):
        return
    endpoints = selectors.endpoints_subscribed(event.name)
    if not endpoints:
        return
    data = dict(event.data)
    if "member_number" not in data:
        data["member_number"] = selectors.member_number(event.member_id)
    event_record(
        event_type=event.name,
        data=data,
        occurred_at=event.occurred_at,
        endpoints=endpoints,
    )


def event_record(
    *,
    event_type: str,
    data: dict[str, Any],
    occurred_at: dt.datetime,
    endpoints: list[WebhookEndpoint],
) -> WebhookEvent:
    """One message and its deliveries, with their hand-off recorded in the outbox."""
    with transaction.atomic(savepoint=False):
        event = WebhookEvent.objects.create(
            type=event_type,
            payload={"type": event_type, "timestamp": occurred_at.isoformat(), "data": data},
            created_at=occurred_at,
        )
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=occurred_at)
            for endpoint in endpoints
        )
        for delivery in deliveries:
            outbox_enqueue(DELIVER_TASK, delivery.pk)
    return event


@transaction.atomic
def test_event_send(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` message to this one endpoint (the admin's test button)."""
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).exists():
        raise EndpointInactive()
    event = event_record(
        event_type=TEST_EVENT_TYPE,
        data={"partner": endpoint.partner.name, "description": endpoint.description},
        occurred_at=timezone.now(),
        endpoints=[endpoint],
    )
    return event.deliveries.get()


@transaction.atomic
def delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send this delivery again (same message id), with a fresh retry schedule."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if not WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, is_active=True).exists():
        raise EndpointInactive()
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.delivered_at = None
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "delivered_at"])
    outbox_enqueue(DELIVER_TASK, delivery.pk)
    return delivery


# --- delivering -----------------------------------------------------------------------------


def signing_secrets(endpoint: WebhookEndpoint, *, now: dt.datetime) -> list[str]:
    found = [endpoint.secret]
    expires_at = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires_at is not None and expires_at > now:
        found.append(endpoint.previous_secret)
    return found


def request_headers(
    *, endpoint: WebhookEndpoint, message_id: str, body: str, now: dt.datetime
) -> dict[str, str]:
    """The Standard Webhooks headers: one `v1,` signature per valid secret, space-separated."""
    signed_at = dt.datetime.fromtimestamp(int(now.timestamp()), tz=dt.UTC)
    signatures = [
        Webhook(secret).sign(msg_id=message_id, timestamp=signed_at, data=body)
        for secret in signing_secrets(endpoint, now=now)
    ]
    return {
        "content-type": "application/json",
        "user-agent": "loyalty-webhooks/1.0",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(signed_at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def retry_delay(attempt: int) -> dt.timedelta | None:
    """The wait after failed attempt number `attempt` (1-based), with jitter; None: give up."""
    if attempt >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempt - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)


def _claim(delivery_id: int, now: dt.datetime) -> bool:
    # Only conditions on the row itself: PostgreSQL re-checks them after waiting for a
    # concurrent claim, so exactly one of two simultaneous claims succeeds.
    return bool(
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        ).update(next_attempt_at=now + CLAIM_LEASE, attempts=F("attempts") + 1, last_attempt_at=now)
    )


def delivery_attempt(*, delivery_id: int, now: dt.datetime | None = None) -> str:
    """Try one due delivery once: 'delivered', 'retry', 'failed' or 'skipped' (not due, done,
    being sent by someone else, or its endpoint disabled). Never raises for the partner's
    failures; they are written on the delivery."""
    now = now or timezone.now()
    delivery = (
        WebhookDelivery.objects.select_related("event", "endpoint")
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING, endpoint__is_active=True)
        .first()
    )
    if delivery is None or not _claim(delivery_id, now):
        return "skipped"
    attempt = delivery.attempts + 1  # what the claim made it: our fencing token
    body = json.dumps(delivery.event.payload, separators=(",", ":"), ensure_ascii=False)
    headers = request_headers(
        endpoint=delivery.endpoint, message_id=delivery.event_id, body=body, now=now
    )
    status_code: int | None = None
    try:
        response = transport.post(delivery.endpoint.url, body=body.encode("utf-8"), headers=headers)
    except transport.UnsafeTarget as exc:
        error = str(exc.message)
    except Exception as exc:  # a partner's failure is recorded, not raised
        error = f"{type(exc).__name__}: {exc}"
    else:
        status_code = response.status
        error = "" if 200 <= response.status < 300 else response.body
    if status_code is not None and not error and 200 <= status_code < 300:
        return _record_success(delivery, attempt=attempt, status_code=status_code, now=now)
    return _record_failure(
        delivery, attempt=attempt, status_code=status_code, error=error or "-", now=now
    )


def _record_success(
    delivery: WebhookDelivery, *, attempt: int, status_code: int, now: dt.datetime
) -> str:
    with transaction.atomic():
        WebhookDelivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=attempt
        ).update(
            status=DeliveryStatus.DELIVERED,
            delivered_at=timezone.now(),
            last_status_code=status_code,
            last_error="",
        )
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, consecutive_failures__gt=0).update(
            consecutive_failures=0, failing_since=None
        )
    return "delivered"


def _record_failure(
    delivery: WebhookDelivery,
    *,
    attempt: int,
    status_code: int | None,
    error: str,
    now: dt.datetime,
) -> str:
    delay = retry_delay(attempt)
    outcome = "retry" if delay is not None else "failed"
    with transaction.atomic():
        changes: dict[str, Any] = {"last_status_code": status_code, "last_error": error[:2000]}
        if delay is None:
            changes["status"] = DeliveryStatus.FAILED
        else:
            changes["next_attempt_at"] = now + delay
        WebhookDelivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=attempt
        ).update(**changes)
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        endpoint.consecutive_failures += 1
        endpoint.failing_since = endpoint.failing_since or now
        fields = ["consecutive_failures", "failing_since"]
        if (
            endpoint.is_active
            and endpoint.consecutive_failures >= DISABLE_AFTER_FAILURES
            and now - endpoint.failing_since >= DISABLE_AFTER_FAILING_FOR
        ):
            endpoint.is_active = False
            endpoint.disabled_at = now
            endpoint.disabled_reason = str(
                _("%(count)d failed attempts in a row since %(since)s.")
                % {
                    "count": endpoint.consecutive_failures,
                    "since": endpoint.failing_since.strftime("%Y-%m-%d %H:%M UTC"),
                }
            )
            fields += ["is_active", "disabled_at", "disabled_reason"]
            outbox_enqueue(DISABLED_EMAIL_TASK, endpoint.pk)
        endpoint.save(update_fields=fields)
    logger.info("webhook delivery %s attempt %s: %s (%s)", delivery.pk, attempt, outcome, error)
    return outcome


def deliver_due(*, now: dt.datetime | None = None, limit: int = DUE_BATCH) -> int:
    """Try every pending delivery whose time has come (retries, and deliveries whose task the
    broker refused or lost). Returns the number delivered."""
    now = now or timezone.now()
    started = time.monotonic()
    delivered = 0
    for delivery_id in selectors.due_delivery_ids(now=now, limit=limit):
        delivered += delivery_attempt(delivery_id=delivery_id, now=now) == "delivered"
        if time.monotonic() - started > DUE_TIME_BUDGET_SECONDS:
            break  # the next run (a minute later) goes on
    return delivered


def endpoint_disabled_notify(*, endpoint_id: int) -> bool:
    """E-mail the partner's contact that an endpoint was disabled; False if there is none."""
    endpoint = WebhookEndpoint.objects.select_related("partner").filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.is_active or not endpoint.partner.contact_email:
        return False
    send_templated_email(
        to=endpoint.partner.contact_email,
        template="webhook_disabled",
        context={"endpoint": endpoint, "partner": endpoint.partner},
        language=settings.LANGUAGE_CODE,
    )
    return True
