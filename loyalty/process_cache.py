"""What every request reads and staff change a few times a year (the program settings, the
earning terms, who listens to webhooks, the API keys), kept in each process's memory.

A value is reused while the shared version number in the cache (Redis in production) is the
one it was loaded under. A change bumps the number, once at the change and again after its
commit (a read in between may have loaded the uncommitted row), so every process reloads on its
next read: exact, not "stale for a few seconds". Within a request the number is read once, at
the first read of the request (the request_started signal opens that memo): a purchase costs one
small cache read for all of its configuration, instead of one read and unpickling per value.
Outside requests (tasks, commands, tests calling services) the number is read every time.

The number starts at the clock in nanoseconds, so a cache emptied by a restart cannot go back to
a number a process still holds. Without the cache (down), nothing is kept: each read loads.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.signals import request_finished, request_started
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger(__name__)

VERSION_KEY = "loyalty:config-version"
T = TypeVar("T")

_shared: dict[str, tuple[int, object]] = {}
# Per thread: .version, the number read in this request (None: not yet); .open, in a request;
# .own, what this thread read after changing something in a transaction that is not over yet
# (its own uncommitted change, which a rollback would undo: kept from the other threads).
_thread = threading.local()


@functools.cache
def _redis(location: str):
    import redis

    return redis.Redis.from_url(location)


def cache_redis():
    """The Redis client of the default cache (one per process: Django's cache makes a client
    per call, about 0.3 ms), or None when the cache is not Redis (development, tests)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    location = settings.CACHES["default"]["LOCATION"]
    servers = location.split(",") if isinstance(location, str) else location
    return _redis(servers[0])  # the first server takes the writes


def _version_read() -> int | None:
    client = cache_redis()
    if client is None:
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, time.time_ns(), timeout=None)
            version = cache.get(VERSION_KEY)
        return version
    key = cache.make_key(VERSION_KEY)
    version = client.get(key)
    if version is None:
        client.set(key, time.time_ns(), nx=True)
        version = client.get(key)
    return int(version)


def version_key() -> str:
    """The version's key in Redis, for a script that reads it in a round trip of its own
    (the API's request budget)."""
    return cache.make_key(VERSION_KEY)


def version_noted(raw: bytes | str | None) -> None:
    """The version as such a script read it: this request's number, so that its first read of
    the configuration costs no round trip of its own. Empty (no number yet): left to that read."""
    if raw and getattr(_thread, "open", False) and getattr(_thread, "version", None) is None:
        _thread.version = int(raw)


def _version_bump() -> None:
    client = cache_redis()
    if client is None:
        try:
            cache.incr(VERSION_KEY)
        except ValueError:  # no number yet (or the cache was emptied)
            cache.add(VERSION_KEY, time.time_ns(), timeout=None)
    elif not client.set(cache.make_key(VERSION_KEY), time.time_ns(), nx=True):
        client.incr(cache.make_key(VERSION_KEY))


def _version() -> int | None:
    memo = getattr(_thread, "version", None)
    if memo is not None:
        return memo
    try:
        version = _version_read()
    except Exception:  # the cache is down: load from the database, keep nothing
        logger.warning("the cache is unreachable: configuration read from the database")
        return None
    if getattr(_thread, "open", False):
        _thread.version = version
    return version


def _kept() -> dict[str, tuple[int, object]]:
    own = getattr(_thread, "own", None)
    if own is None:
        return _shared
    if connection.in_atomic_block:
        return own
    _thread.own = None  # that transaction is over: a commit reloaded everything, a rollback
    return _shared  # left only this thread's copies, dropped now


def cached(name: str, load: Callable[[], T], *, keep_none: bool = True) -> T:
    """`load()`'s value, from this process's memory while the shared version is unchanged
    (`keep_none=False`: a None is loaded again every time, e.g. an unknown API key, which
    anyone can send by the million)."""
    kept = _kept()
    version = _version()
    held = kept.get(name)
    if held is not None and version is not None and held[0] == version:
        return held[1]  # type: ignore[return-value]
    value = load()
    if version is not None and (keep_none or value is not None):
        kept[name] = (version, value)
    return value


def reload_everywhere() -> None:
    """Every process (this one at once) loads its configuration again at its next read."""
    _shared.clear()
    if getattr(_thread, "own", None) is not None:
        _thread.own.clear()
    _thread.version = None
    try:
        _version_bump()
    except Exception:
        logger.warning("the cache is unreachable: other processes keep their configuration")


def changed(**kwargs) -> None:
    """Every process reloads its configuration (receiver of the save and delete signals of what
    is cached here): now, and again after the commit. Until the transaction is over, what this
    thread reads is kept for itself only."""
    if connection.in_atomic_block and getattr(_thread, "own", None) is None:
        _thread.own = {}
        transaction.on_commit(_after_commit)
    reload_everywhere()


def reload_on_changes_of(*senders, uid: str) -> None:
    """Connect `changed` to the save and delete signals of these models (or "app.Model"
    names), whose rows something here is read from: an app's ready() calls it."""
    for sender in senders:
        for signal in (post_save, post_delete):
            signal.connect(
                changed, sender=sender, dispatch_uid=f"{uid}.{sender}.{signal is post_save}"
            )


def _after_commit() -> None:
    _thread.own = None
    reload_everywhere()


def _request_opened(**kwargs) -> None:
    _thread.open = True
    _thread.version = None


def request_closed(**kwargs) -> None:
    """The thread is out of a request (receiver of request_finished; the tests' fixture calls it
    too: a response nobody closed, such as one read at a test module's import, sends none)."""
    _thread.open = False
    _thread.version = None


request_started.connect(_request_opened, dispatch_uid="process_cache_request_started")
request_finished.connect(request_closed, dispatch_uid="process_cache_request_finished")
