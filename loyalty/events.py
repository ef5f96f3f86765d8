"""Domain events: what happened to a member, told by the services that made it happen.

A service calls `emit("points.earned", member_id=..., points=...)` inside its transaction; every
subscriber runs at once, in that same transaction, so what it writes (a webhook's outbox row, an
automation's trigger) commits or rolls back with the change itself. Subscribers are registered by
the apps that want them, in their AppConfig.ready() (the webhooks of the partner API, the
campaigns' automations), so no service imports the apps to its right. Subscribers must be quick:
record what should happen and leave the work to a task (through `loyalty.outbox`).

Plumbing: imports no domain model; every app may use it.

Event names (the data each carries is listed in docs/decisions.md):
member.enrolled, member.updated, consent.changed, points.earned, points.redeemed,
points.expired, points.adjusted, points.reversed, tier.changed, reward.redeemed,
redemption.cancelled, segment.changed; and two that only apps inside the system hear (not
webhook event types): member.confirmed (the e-mail address was confirmed, the member is
active) and segments.recalculated (a segmentation run became the current one; member_id None,
data run_id and previous_run_id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

EVENT_NAMES = frozenset(
    {
        "member.enrolled",
        "member.updated",
        "consent.changed",
        "points.earned",
        "points.redeemed",
        "points.expired",
        "points.adjusted",
        "points.reversed",
        "tier.changed",
        "reward.redeemed",
        "redemption.cancelled",
        "segment.changed",
        "member.confirmed",
        "segments.recalculated",
    }
)
ANY = "*"


@dataclass(frozen=True)
class DomainEvent:
    name: str
    member_id: int | None
    data: dict[str, Any] = field(default_factory=dict)
    occurred_at: dt.datetime = field(default_factory=timezone.now)


Subscriber = Callable[[DomainEvent], None]

_subscribers: dict[str, list[Subscriber]] = {}
# Subscribers that listen only at times (webhooks: while some endpoint wants the event) say so
# here, so that `has_subscribers` does not make the emitter work out events nobody wants.
_interest: dict[Subscriber, Callable[[str], bool]] = {}


def subscribe(
    name: str, subscriber: Subscriber, *, interested: Callable[[str], bool] | None = None
) -> None:
    """Call `subscriber(event)` for every event of that name (or every event: `ANY`).

    `interested(name)`, if given, tells `has_subscribers` whether it wants that event now."""
    if name != ANY and name not in EVENT_NAMES:
        raise ValueError(f"unknown domain event {name!r}")
    handlers = _subscribers.setdefault(name, [])
    if subscriber not in handlers:
        handlers.append(subscriber)
    if interested is not None:
        _interest[subscriber] = interested


def unsubscribe(name: str, subscriber: Subscriber) -> None:
    handlers = _subscribers.get(name, [])
    if subscriber in handlers:
        handlers.remove(subscriber)


def has_subscribers(name: str) -> bool:
    """For events that are costly to work out (who moved segment): only when someone listens."""
    handlers = [*_subscribers.get(name, ()), *_subscribers.get(ANY, ())]
    return any(_interest[handler](name) if handler in _interest else True for handler in handlers)


def emit(name: str, *, member_id: int | None, **data: Any) -> DomainEvent | None:
    """Tell every subscriber, in the caller's transaction; data must be JSON (ids, not models)."""
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown domain event {name!r}")
    handlers = [*_subscribers.get(name, ()), *_subscribers.get(ANY, ())]
    if not handlers:
        return None
    event = DomainEvent(name=name, member_id=member_id, data=data)
    for handler in handlers:
        handler(event)
    return event
