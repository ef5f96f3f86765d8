"""Recording side effects in the outbox and handing them to the broker.

Guarantee: a recorded message reaches the broker at least once, as long as its transaction
committed; it is handed over at most once at a time (a lease on the row). A crash in the instant
between the broker accepting a message and the row being marked can hand it over a second time,
so every task run through the outbox is idempotent (see docs/decisions.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

from celery import Task, current_app
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import OutboxMessage

logger = logging.getLogger(__name__)

# How long a hand-off may take before someone else may try again.
CLAIM_LEASE = dt.timedelta(seconds=60)
# The sweep leaves fresh messages to the after-commit hand-off of their own request.
SWEEP_GRACE = dt.timedelta(seconds=30)
SWEEP_BATCH = 1000
# Messages handed over are kept this long (for the admin), then pruned by the sweep.
KEEP_DISPATCHED = dt.timedelta(days=7)
# After the broker refused a message, leave new ones to the sweep for this long (seconds):
# a refused connection costs redis-py several seconds of its own retries.
BROKER_PAUSE = 15.0


def _task_name(task: Task | str) -> str:
    return task if isinstance(task, str) else task.name


def outbox_enqueue(task: Task | str, *args: Any, **kwargs: Any) -> OutboxMessage:
    """Record `task(*args, **kwargs)` in the caller's transaction; hand it over after commit.

    Arguments must be JSON: ids, not model instances. Outside a transaction the hand-off
    happens at once.
    """
    message = OutboxMessage.objects.create(task=_task_name(task), args=list(args), kwargs=kwargs)
    transaction.on_commit(lambda: _hand_over_soon(message.pk))
    return message


class _HandOffThread:
    """Hands committed messages to the broker off the request's thread, so that a broker that
    is down never slows the answer (one daemon thread per process; the sweep covers a process
    that dies with messages still queued here)."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.refused_at = -BROKER_PAUSE
        self.unfinished = 0  # queued or in hand: lets a test wait until this thread is idle

    def put(self, message_id: int) -> None:
        with self.lock:
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                self.queue = queue.SimpleQueue()  # a forked child starts afresh
                self.pid = os.getpid()
                self.thread = threading.Thread(target=self.run, name="outbox", daemon=True)
                self.thread.start()
                self.unfinished = 0
            self.unfinished += 1
            self.queue.put(message_id)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.unfinished and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.unfinished

    def run(self) -> None:
        while True:
            message_id = self.queue.get()
            try:
                if time.monotonic() - self.refused_at < BROKER_PAUSE:
                    continue  # the broker was away a moment ago: the sweep will hand it over
                if _hand_over(message_id) == "refused":
                    self.refused_at = time.monotonic()
            except Exception:
                logger.exception("outbox hand-off of message %s failed", message_id)
            finally:
                connection.close()
                with self.lock:
                    self.unfinished -= 1


_hand_off_thread = _HandOffThread()


def _hand_over_soon(message_id: int) -> None:
    if current_app.conf.task_always_eager:
        # Tasks run in this process anyway (embedded default, most tests): run them now.
        outbox_dispatch(message_id=message_id)
    else:
        _hand_off_thread.put(message_id)


def _claim(message_id: int, now: dt.datetime) -> bool:
    return bool(
        OutboxMessage.objects.filter(pk=message_id, dispatched_at__isnull=True)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_LEASE))
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )


def outbox_dispatch(*, message_id: int) -> bool:
    """Hand one pending message to the broker; True if it was accepted.

    Never raises: a refused hand-off is logged and left for the sweep, so the request that
    committed the change still succeeds.
    """
    return _hand_over(message_id) == "accepted"


def _hand_over(message_id: int) -> str:
    """'accepted', 'refused' (by the broker) or 'skipped' (handed over already, or being so)."""
    if not _claim(message_id, timezone.now()):
        return "skipped"
    message = OutboxMessage.objects.get(pk=message_id)
    try:
        task = import_string(message.task)
        if current_app.conf.task_always_eager:
            # apply, not apply_async: eager apply_async flips a process-wide "join will block"
            # flag that threads running it at once can leave set.
            task.apply(args=message.args, kwargs=message.kwargs, throw=True)
        else:
            # retry=False: do not hold the request while the broker is away; the sweep retries.
            task.apply_async(args=message.args, kwargs=message.kwargs, retry=False)
    except Exception as exc:
        logger.warning("outbox message %s not handed over: %r", message_id, exc)
        OutboxMessage.objects.filter(pk=message_id).update(
            claimed_at=None, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        return "refused"
    OutboxMessage.objects.filter(pk=message_id).update(
        dispatched_at=timezone.now(), claimed_at=None, last_error=""
    )
    return "accepted"


def pending_message_ids(*, now: dt.datetime | None = None, limit: int = SWEEP_BATCH) -> list[int]:
    now = now or timezone.now()
    return list(
        OutboxMessage.objects.filter(dispatched_at__isnull=True, created_at__lte=now - SWEEP_GRACE)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def outbox_sweep(*, now: dt.datetime | None = None) -> int:
    """Hand over what is still pending (the broker was down, or a process died after its
    commit), oldest first; prune what was handed over long ago. Returns the number handed over.
    """
    now = now or timezone.now()
    handed_over = 0
    for message_id in pending_message_ids(now=now):
        outcome = _hand_over(message_id)
        if outcome == "refused":
            break  # the broker is still away: try the rest next time
        handed_over += outcome == "accepted"
    OutboxMessage.objects.filter(dispatched_at__lt=now - KEEP_DISPATCHED).delete()
    return handed_over


def outbox_dispatch_now(*, message_ids: Iterable[int]) -> int:
    """Hand over the given pending messages at once (the admin's action)."""
    return sum(outbox_dispatch(message_id=pk) for pk in message_ids)
