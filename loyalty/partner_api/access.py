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
import time

from django.core.cache import caches
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, permissions, throttling
from rest_framework.authentication import BaseAuthentication
from rest_framework_api_key.permissions import KeyParser

from loyalty import process_cache

from .models import PartnerAPIKey

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


class PartnerKeyAuthentication(BaseAuthentication):
    keyword = KeyParser.keyword
    parser = KeyParser()

    def authenticate(self, request):
        key = self.parser.get(request)
        if not key:
            return None  # no key at all: NotAuthenticated (401) from the permission
        prefix, _dot, _secret = key.partition(".")
        api_key = api_key_of_prefix(prefix)
        if api_key is None or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed(
                _("The API key is not valid."), code="invalid_key"
            )
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(_("The API key has expired."), code="key_expired")
        if not api_key.partner.is_active:
            raise exceptions.AuthenticationFailed(
                _("The partner of this API key is inactive."), code="partner_inactive"
            )
        now = timezone.now()
        if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
            PartnerAPIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now  # the copy this process keeps, too
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return self.keyword  # makes DRF answer 401 (with WWW-Authenticate), not 403


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
return {count, redis.call('PTTL', KEYS[1])}
"""


@functools.cache
def _counter(client):
    return client.register_script(_COUNT_SCRIPT)


def _count_request(key: str) -> tuple[int, float]:
    """Count a request in the key's current window: (requests in it, seconds until it ends)."""
    cache = caches["default"]
    client = process_cache.cache_redis()
    if client is not None:
        count, milliseconds = _counter(client)(
            keys=[cache.make_key(key)], args=[THROTTLE_WINDOW_SECONDS]
        )
        return int(count), max(milliseconds / 1000, 1)
    # Any other cache (the local-memory one of development and tests): add and incr are atomic.
    now = time.time()
    if cache.add(key, 1, THROTTLE_WINDOW_SECONDS):
        cache.set(f"{key}:start", now, THROTTLE_WINDOW_SECONDS)
        return 1, THROTTLE_WINDOW_SECONDS
    try:
        count = cache.incr(key)
    except ValueError:  # the window ended just now: this request opens the next one
        return _count_request(key)
    started = cache.get(f"{key}:start", now)
    return count, max(started + THROTTLE_WINDOW_SECONDS - now, 1)


class PartnerKeyThrottle(throttling.BaseThrottle):
    """A budget per API key and minute, set per partner; counted in the cache (Redis)."""

    retry_after: float | None = None

    def allow_request(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, PartnerAPIKey):
            return True  # unauthenticated requests are refused before any work is done
        count, self.retry_after = _count_request(f"partner_api:throttle:{api_key.prefix}")
        return count <= api_key.partner.api_requests_per_minute

    def wait(self) -> float | None:
        return self.retry_after
