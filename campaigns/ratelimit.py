"""The send rate shared by every worker: messages per second and per hour (docs/campaigns.md).

With Redis (REDIS_URL set) one Lua script, run atomically by Redis on Redis's own clock, hands
out send times:

- per second: a "next free slot" time (GCRA without burst). Each call reserves the slot
  max(next, now) and moves `next` on by 1/rate, so messages from all workers together are at
  least 1/rate apart; the caller sleeps until its slot.
- per hour: a counter of the current clock hour (INCR + EXPIRE). When it has reached the
  limit nothing is reserved and the caller is told to come back at the next hour.

Without Redis (the embedded default: SQLite, tasks in-process) the same two rules are kept in
this process (`LocalRate`). If Redis cannot be reached, `acquire` does not send: it waits and
asks again (1, 2, 4 ... at most 10 s), so an outage neither crashes the sender nor lets it
exceed the rate.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

KEY = "loyalty:campaigns:send-rate"
# Waiting longer than this for a slot in the hour ends the batch: the task comes back later.
LONG_WAIT = 30.0
REDIS_RETRY_MAX = 10.0

# KEYS[1]: next free slot (microseconds); KEYS[2]: prefix of the per-hour counters.
# ARGV[1]: microseconds between messages (0: no per-second limit); ARGV[2]: per hour (0: none).
# Returns {granted (1/0), microseconds to wait}.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local per_hour = tonumber(ARGV[2])
local hour = math.floor(tonumber(t[1]) / 3600)
local hour_key = KEYS[2] .. ':' .. hour
if per_hour > 0 then
  local used = tonumber(redis.call('GET', hour_key) or '0')
  if used >= per_hour then
    return {0, (hour + 1) * 3600000000 - now}
  end
end
local slot = now
if interval > 0 then
  local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
  if nxt > slot then slot = nxt end
  redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.floor((slot - now + interval) / 1000) + 1000)
end
if per_hour > 0 then
  redis.call('INCR', hour_key)
  redis.call('EXPIRE', hour_key, 7200)
end
return {1, slot - now}
"""


class Rate(Protocol):
    def acquire(self) -> float:
        """Block until one message may go out and return 0.0; or, if the hourly budget is spent,
        return the seconds until it renews (more than LONG_WAIT) without taking a slot."""


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


class NoLimit:
    def acquire(self) -> float:
        return 0.0


class LocalRate:
    """Both limits for this process alone (the embedded default has one process)."""

    def __init__(self, per_second: int, per_hour: int) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.per_hour = per_hour
        self.next_at = 0.0
        self.hour = -1
        self.used = 0

    def acquire(self) -> float:
        while True:
            wall = time.time()
            hour = int(wall // 3600)
            if hour != self.hour:
                self.hour, self.used = hour, 0
            if self.per_hour and self.used >= self.per_hour:
                wait = (hour + 1) * 3600 - wall
                if wait > LONG_WAIT:
                    return wait
                _sleep(wait)
                continue
            now = time.monotonic()
            slot = max(now, self.next_at)
            self.next_at = slot + self.interval
            self.used += 1
            _sleep(slot - now)
            return 0.0


class RedisRate:
    """Both limits for every worker together, kept in Redis."""

    def __init__(self, per_second: int, per_hour: int, *, url: str, key: str = KEY) -> None:
        import redis

        self.interval_us = int(1_000_000 / per_second) if per_second else 0
        self.per_hour = per_hour
        self.key = key
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script = self.client.register_script(_SCRIPT)

    def _ask(self) -> tuple[bool, float]:
        import redis

        pause = 1.0
        while True:
            try:
                granted, wait_us = self.script(
                    keys=[f"{self.key}:next", f"{self.key}:hour"],
                    args=[self.interval_us, self.per_hour],
                )
                return bool(granted), int(wait_us) / 1_000_000
            except redis.RedisError as error:
                # Not reachable: send nothing, ask again (an outage never exceeds the rate).
                logger.warning("send rate: Redis unavailable (%s), waiting %.0f s", error, pause)
                time.sleep(pause)
                pause = min(pause * 2, REDIS_RETRY_MAX)

    def acquire(self) -> float:
        while True:
            granted, wait = self._ask()
            if granted:
                _sleep(wait)
                return 0.0
            if wait > LONG_WAIT:
                return wait
            _sleep(wait)


def send_rate(per_second: int, per_hour: int) -> Rate:
    """The rate for a send task: shared through Redis when the project has it."""
    if not per_second and not per_hour:
        return NoLimit()
    if settings.REDIS_URL:
        return RedisRate(per_second, per_hour, url=settings.REDIS_URL)
    return LocalRate(per_second, per_hour)


def hourly_budget_wait() -> float:
    """Seconds until the shared hourly budget renews if it is spent now, else 0 (Redis only)."""
    from .models import CampaignSettings

    per_hour = CampaignSettings.load().messages_per_hour
    if not per_hour or not settings.REDIS_URL:
        return 0.0
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        seconds, _micro = client.time()
        used = int(client.get(f"{KEY}:hour:{seconds // 3600}") or 0)
    except redis.RedisError:
        return 0.0  # the sender itself waits for Redis (RedisRate._ask)
    finally:
        client.close()
    return float((seconds // 3600 + 1) * 3600 - seconds) if used >= per_hour else 0.0
