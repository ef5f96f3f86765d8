"""Who may call the partner API: key authentication, scopes and a request budget per key.

A request carries `Authorization: Api-Key <prefix>.<secret>`. The key is stored hashed
(djangorestframework-api-key: SHA-512 of a high-entropy key); an unknown, wrong, expired or
revoked key, or one of an inactive partner, is 401. A view names the scope each method needs
(`required_scopes = {"GET": "members:read", "POST": "members:write"}`); a key without it is 403.
Views find the partner as `request.auth.partner`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time

from django.core.cache import caches
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, permissions, throttling
from rest_framework.authentication import BaseAuthentication
from rest_framework_api_key.permissions import KeyParser

from loyalty import process_cache

from .models import PartnerAPIKey

logger = logging.getLogger(__name__)

# Writing "last used" on every request would cost a write per call: once a minute is enough.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def api_key_of_prefix(prefix: str) -> PartnerAPIKey | None:
    """The unrevoked key with this prefix and its partner, kept in the process's memory
    (loyalty/process_cache.py): a key, its partner or a revocation changing makes every process
    read it again, so a revoked key is refused at once everywhere."""
    return process_cache.cached(
        f"partner-api-key:{prefix}",
        lambda: (
            PartnerAPIKey.objects.select_related("partner")
            .filter(prefix=prefix, revoked=False)
            .first()
        ),
        keep_none=False,
    )


# Our keys' prefixes are 8 letters and digits: anything else is refused before Redis or the
# database is asked (and never becomes a counter's name).
PREFIX_MAX_LENGTH = 32


class PartnerKeyAuthentication(BaseAuthentication):
    keyword = KeyParser.keyword
    parser = KeyParser()

    def authenticate(self, request):
        key = self.parser.get(request)
        if not key:
            return None  # no key at all: NotAuthenticated (401) from the permission
        prefix, _dot, _secret = key.partition(".")
        if not (0 < len(prefix) <= PREFIX_MAX_LENGTH and prefix.isascii() and prefix.isalnum()):
            raise exceptions.AuthenticationFailed(
                _("The API key is not valid."), code="invalid_key"
            )
        # Counted in the key's budget here, in the round trip to Redis that also reads the
        # configuration's version (loyalty/process_cache.py), which the key's lookup needs:
        # one round trip, not two. A request whose key is unusable is taken off the count
        # again, so a key's visible prefix with a wrong secret spends nobody's budget.
        budget = _budget_count(prefix)
        try:
            api_key = _usable_key(key, prefix)
        except exceptions.AuthenticationFailed:
            _budget_uncount(prefix)
            raise
        request.partner_api_budget = budget  # for PartnerKeyThrottle
        now = timezone.now()
        if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
            PartnerAPIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now  # the copy this process keeps, too
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return self.keyword  # makes DRF answer 401 (with WWW-Authenticate), not 403


def _usable_key(key: str, prefix: str) -> PartnerAPIKey:
    api_key = api_key_of_prefix(prefix)
    if api_key is None or not api_key.is_valid(key):
        raise exceptions.AuthenticationFailed(_("The API key is not valid."), code="invalid_key")
    if api_key.has_expired:
        raise exceptions.AuthenticationFailed(_("The API key has expired."), code="key_expired")
    if not api_key.partner.is_active:
        raise exceptions.AuthenticationFailed(
            _("The partner of this API key is inactive."), code="partner_inactive"
        )
    return api_key


class HasScope(permissions.BasePermission):
    """The key must hold the scope the view names for this method."""

    message = _("This API key does not have the scope this request needs.")
    code = "missing_scope"

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, PartnerAPIKey):
            raise exceptions.NotAuthenticated(
                _("Send your API key as 'Authorization: Api-Key <key>'."), code="not_authenticated"
            )
        required = getattr(view, "required_scopes", {}).get(request.method)
        if required is None:
            return request.method in ("HEAD", "OPTIONS") and bool(
                getattr(view, "required_scopes", {}).get("GET")
            )
        if not request.auth.has_scope(required):
            self.message = _("This API key does not have the scope %(scope)s.") % {
                "scope": required
            }
            return False
        return True


# The budget is counted per key in a window of a minute that starts with the key's first request
# in it: one atomic INCR in one round trip to Redis, a counter of constant size. (DRF's
# SimpleRateThrottle reads a list of every timestamp of the last minute and writes it back on each
# request: 48,000 entries at 800 requests/s, and overlapping requests overwrite each other's.)
THROTTLE_WINDOW_SECONDS = 60
_COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2]) or ''}
"""
_UNCOUNT_SCRIPT = """
if redis.call('DECR', KEYS[1]) <= 0 then redis.call('DEL', KEYS[1]) end
return 0
"""


@functools.cache
def _script(client, text: str):
    return client.register_script(text)


def _budget_key(prefix: str) -> str:
    return f"partner_api:throttle:{prefix}"


def _budget_count(prefix: str) -> tuple[int, float] | None:
    """Count a request in the key's current window: (requests in it, seconds until it ends);
    with Redis, the configuration's version is read in the same round trip. None when the
    cache cannot be reached: the request goes on uncounted (a till's purchase is not refused
    because the cache is down; the configuration is then read from the database)."""
    cache = caches["default"]
    key = _budget_key(prefix)
    try:
        client = process_cache.cache_redis()
        if client is not None:
            count, milliseconds, version = _script(client, _COUNT_SCRIPT)(
                keys=[cache.make_key(key), process_cache.version_key()],
                args=[THROTTLE_WINDOW_SECONDS],
            )
            process_cache.version_noted(version)
            return int(count), max(milliseconds / 1000, 1)
        return _local_count(cache, key)
    except Exception:
        logger.warning("the cache is unreachable: API requests are not counted against budgets")
        return None


def _local_count(cache, key: str) -> tuple[int, float]:
    """Any other cache (the local-memory one of development and tests): add and incr are
    atomic."""
    now = time.time()
    if cache.add(key, 1, THROTTLE_WINDOW_SECONDS):
        cache.set(f"{key}:start", now, THROTTLE_WINDOW_SECONDS)
        return 1, THROTTLE_WINDOW_SECONDS
    try:
        count = cache.incr(key)
    except ValueError:  # the window ended just now: this request opens the next one
        return _local_count(cache, key)
    started = cache.get(f"{key}:start", now)
    return count, max(started + THROTTLE_WINDOW_SECONDS - now, 1)


def _budget_uncount(prefix: str) -> None:
    """Take a request back off the count (its key was unusable)."""
    cache = caches["default"]
    key = _budget_key(prefix)
    try:
        client = process_cache.cache_redis()
        if client is not None:
            _script(client, _UNCOUNT_SCRIPT)(keys=[cache.make_key(key)])
        else:
            cache.decr(key)
    except ValueError:  # the window ended meanwhile: nothing to take back
        pass
    except Exception:
        logger.warning("the cache is unreachable: an unusable key's request stays counted")


class PartnerKeyThrottle(throttling.BaseThrottle):
    """A budget per API key and minute, set per partner; counted in the cache (Redis)."""

    retry_after: float | None = None

    def allow_request(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, PartnerAPIKey):
            return True  # unauthenticated requests are refused before any work is done
        budget = getattr(request, "partner_api_budget", None)  # counted at authentication
        if budget is None:
            budget = _budget_count(api_key.prefix)
        if budget is None:  # the cache is unreachable
            return True
        count, self.retry_after = budget
        return count <= api_key.partner.api_requests_per_minute

    def wait(self) -> float | None:
        return self.retry_after
