"""`Idempotency-Key` on the API's POSTs, with Stripe's semantics.

The same key with the same request replays the first response (status and body, with
`Idempotent-Replayed: true`) for 24 hours; the same key with another request is 422
`idempotency_key_reused`; the same key while the first request is still running is 409
`idempotency_request_in_progress`.

How: the record is inserted in the request's own transaction, before the work, and its
response stored in that transaction after it. A second request with the key inserts the same
(partner, key) and so waits on the unique index for the first transaction: when that commits,
it reads the stored response and replays it; when it rolls back (a server error), the second
does the work itself. It waits at most IN_PROGRESS_WAIT (PostgreSQL's lock_timeout), then 409.
Server errors are not stored: nothing was changed, so the partner may simply try again.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.response import Response

from loyalty.errors import Conflict, ValidationFailed

from .models import IdempotencyRecord

KEEP_FOR = dt.timedelta(hours=24)
IN_PROGRESS_WAIT_MS = 5000
HEADER = "Idempotency-Key"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"
    http_status = 422
    default_message = _("This Idempotency-Key was used with another request.")


class IdempotencyRequestInProgress(Conflict):
    code = "idempotency_request_in_progress"
    default_message = _("A request with this Idempotency-Key is still in progress; try later.")


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, cls=DjangoJSONEncoder, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    return Response(
        record.body,
        status=record.status_code,
        headers={"Idempotent-Replayed": "true"},
        content_type=record.content_type or None,
    )


def _lock_timeout(milliseconds: int | None) -> None:
    """For the rest of this transaction (PostgreSQL; SQLite serialises writers anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if milliseconds is None:
                cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
            else:
                cursor.execute(f"SET LOCAL lock_timeout = '{int(milliseconds)}ms'")


def _claim(partner_id: int, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    """Insert the record (waiting for a concurrent one with the key), or the earlier answer."""
    for _attempt in range(2):
        try:
            with transaction.atomic():
                _lock_timeout(IN_PROGRESS_WAIT_MS)
                record = IdempotencyRecord.objects.create(
                    partner_id=partner_id, key=key, fingerprint=fingerprint
                )
                _lock_timeout(None)  # the work itself waits for locks as usual
                return record
        except OperationalError as exc:  # lock_timeout: the first request is still running
            raise IdempotencyRequestInProgress() from exc
        except IntegrityError:
            earlier = IdempotencyRecord.objects.filter(partner_id=partner_id, key=key).first()
            if earlier is None:
                continue  # removed meanwhile (expired): insert again
            if earlier.created_at < timezone.now() - KEEP_FOR:
                earlier.delete()
                continue
            if earlier.fingerprint != fingerprint:
                raise IdempotencyKeyReused() from None
            if earlier.status_code is None:  # pragma: no cover - only without row locks
                raise IdempotencyRequestInProgress() from None
            return _replay(earlier)
    raise IdempotencyRequestInProgress()


def idempotent(handler):
    """Decorate an APIView's `post`: honour the request's Idempotency-Key, if it has one."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        key = key.strip()
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise ValidationFailed(
                _("An Idempotency-Key is 1 to 255 printable characters."), field="Idempotency-Key"
            )
        with transaction.atomic():
            claimed = _claim(request.auth.partner_id, key, _fingerprint(request))
            if isinstance(claimed, Response):
                return claimed
            try:
                with transaction.atomic():
                    response = handler(view, request, *args, **kwargs)
            except Exception as exc:
                response = view.handle_exception(exc)
            if response.status_code >= 500:
                transaction.set_rollback(True)  # forget the key: nothing was done
                return response
            claimed.status_code = response.status_code
            claimed.body = response.data
            claimed.content_type = response.content_type or ""
            claimed.save(update_fields=["status_code", "body", "content_type"])
        return response

    return wrapper


def idempotency_records_purge(*, now: dt.datetime | None = None) -> int:
    """Forget records older than 24 hours (nightly)."""
    cutoff = (now or timezone.now()) - KEEP_FOR
    deleted, _by_model = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
