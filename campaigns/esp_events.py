"""Bounces, complaints, unsubscribes, opens and clicks reported by a mail provider through
django-anymail's tracking webhooks (`/anymail/<provider>/tracking/`), mapped to our events.

Connected to `anymail.signals.tracking` in CampaignsConfig.ready(). Each event is recorded in
one transaction by `services.delivery_event_record`; an error answers the provider 500, so it
sends the event again later.
"""

from __future__ import annotations

from typing import Any

from .services import DeliveryEvent, delivery_event_record

# Rejections that mean the address itself is bad (or already on the provider's own list).
_HARD_REJECT_REASONS = {"invalid", "bounced"}
# "bounced" events a provider marks as temporary (anymail maps most of these to "deferred").
_SOFT_BOUNCE_TYPES = {"Postmark": {"SoftBounce"}}


def event_kind(event: Any, esp_name: str) -> str | None:
    """Our kind of event for an AnymailTrackingEvent, or None for one we do not record
    (queued, sent, delivered, deferred, a soft bounce, ...)."""
    event_type = event.event_type
    if event_type == "bounced":
        esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
        if esp_event.get("Type") in _SOFT_BOUNCE_TYPES.get(esp_name, set()):
            return None
        return DeliveryEvent.HARD_BOUNCE
    if event_type == "rejected":
        if event.reject_reason in _HARD_REJECT_REASONS:
            return DeliveryEvent.HARD_BOUNCE
        if event.reject_reason == "spam":
            return DeliveryEvent.COMPLAINT
        return None
    return {
        "complained": DeliveryEvent.COMPLAINT,
        "unsubscribed": DeliveryEvent.UNSUBSCRIBE,
        "opened": DeliveryEvent.OPEN,
        "clicked": DeliveryEvent.CLICK,
    }.get(event_type)


def _recipient_id(metadata: Any) -> int | None:
    try:
        return int(metadata["loyalty_recipient"])
    except (KeyError, TypeError, ValueError):
        return None


def tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    """Receiver of anymail's `tracking` signal."""
    kind = event_kind(event, esp_name)
    email = (event.recipient or "").strip()
    if kind is None or len(email) > 254:
        return
    description = event.description or event.reject_reason or event.event_type
    delivery_event_record(
        kind=kind,
        email=email,
        message_id=event.message_id if isinstance(event.message_id, str) else None,
        recipient_id=_recipient_id(event.metadata),
        url=event.click_url or "",
        at=event.timestamp,
        source=f"{esp_name}: {description}"[:200],
    )
