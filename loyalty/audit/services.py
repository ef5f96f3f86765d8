"""Recording what staff changed: `audit_record`, called in the transaction of the change.

The client's address is taken from the request being served (`AuditContextMiddleware` keeps
it for the request), so services need no request argument. With an actor and an object the
entry also goes into the admin's own history of that object (`django_admin_log`), so the
"History" page of a member shows, say, a points adjustment next to edits of the member's
fields.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Q, QuerySet, TextField
from django.db.models.fields.files import FieldFile
from django.db.models.functions import Cast
from django.utils.functional import Promise
from django.utils.translation import gettext

from .models import AuditEntry

_client_ip: ContextVar[str | None] = ContextVar("audit_client_ip", default=None)


def json_value(value: Any) -> Any:
    """A value as the log stores it: JSON, readable (objects by their names, not ids)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Model):
        return str(value)
    if isinstance(value, FieldFile):
        return value.name or ""
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, QuerySet | list | tuple | set | frozenset):
        items = [json_value(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Promise):
        return str(value)
    return str(value)


def change(old: Any, new: Any) -> dict[str, Any]:
    """One changed field as the log stores it."""
    return {"old": json_value(old), "new": json_value(new)}


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict]:
    """The fields whose value differs between two snapshots, with old and new values."""
    return {
        name: change(before.get(name), value)
        for name, value in after.items()
        if json_value(before.get(name)) != json_value(value)
    }


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def audit_record(
    *,
    actor: Any | None,
    action: str,
    obj: Model | None = None,
    object_repr: str | None = None,
    description: str = "",
    params: Mapping[str, Any] | None = None,
    changes: Mapping[str, Any] | None = None,
    reason: str = "",
    admin_history: bool = True,
) -> AuditEntry:
    """Record one change; call it inside the transaction that makes the change.

    `description` is an untranslated message (mark it with gettext_noop) with `params`;
    `changes` maps field names to `change(old, new)`. `object_repr` replaces `str(obj)` where
    that would name a person (members are recorded by their number). `admin_history=False`
    when the admin writes its own history entry for the same change.
    """
    actor = actor if actor is not None and getattr(actor, "pk", None) is not None else None
    content_type = None
    object_id = ""
    if obj is not None:
        content_type = ContentType.objects.get_for_model(obj, for_concrete_model=False)
        object_id = str(obj.pk)
        if object_repr is None:
            object_repr = str(obj)
    entry = AuditEntry.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        content_type=content_type,
        object_id=object_id,
        object_repr=(object_repr or "")[:200],
        description=description,
        description_params=json_value(dict(params or {})),
        changes=json_value(dict(changes or {})),
        reason=reason or "",
        ip_address=_valid_ip(_client_ip.get()),
    )
    if admin_history and actor is not None and obj is not None:
        message = entry.summary or entry.get_action_display()
        if entry.reason:
            message = gettext("%(description)s Reason: %(reason)s") % {
                "description": message,
                "reason": entry.reason,
            }
        LogEntry.objects.log_actions(
            user_id=actor.pk,
            queryset=[obj],
            action_flag=CHANGE,
            change_message=message,
            single_object=True,
        )
    return entry


def entries_for(obj: Model) -> QuerySet[AuditEntry]:
    """The log of one object, newest first."""
    content_type = ContentType.objects.get_for_model(obj, for_concrete_model=False)
    return AuditEntry.objects.filter(content_type=content_type, object_id=str(obj.pk)).order_by(
        "-created_at", "-pk"
    )


def audit_rewrite(
    *,
    about: Iterable[QuerySet],
    own_texts: Iterable[str],
    anywhere_texts: Iterable[str],
    scrub: Callable[[str, Iterable[str], str], str],
    replacement: str,
) -> int:
    """Remove a person's texts from the log (erasure): in entries about `about`'s objects
    every text of `own_texts`, elsewhere those of `anywhere_texts`, each replaced by
    `replacement`. Every text column and the changes are rewritten. Returns the entries
    changed."""
    own_texts, anywhere_texts = tuple(own_texts), tuple(anywhere_texts)
    changed = 0
    seen: set[int] = set()

    def rewrite(entry: AuditEntry, texts: tuple[str, ...]) -> None:
        nonlocal changed
        seen.add(entry.pk)
        fields = {
            "object_repr": scrub(entry.object_repr, texts, replacement)[:200],
            "actor_name": scrub(entry.actor_name, texts, replacement)[:254],
            "reason": scrub(entry.reason, texts, replacement),
            "description_params": _scrub_json(entry.description_params, texts, scrub, replacement),
            "changes": _scrub_json(entry.changes, texts, scrub, replacement),
        }
        if any(getattr(entry, name) != value for name, value in fields.items()):
            AuditEntry.objects.filter(pk=entry.pk).update(**fields)
            changed += 1

    for queryset in about:
        model = queryset.model
        if model._meta.is_composite_pk:
            continue
        content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
        ids = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        for start in range(0, len(ids), 500):
            entries = AuditEntry.objects.filter(
                content_type=content_type, object_id__in=ids[start : start + 500]
            )
            for entry in entries.iterator():
                rewrite(entry, own_texts)
    naming = Q()
    for text in anywhere_texts:
        # As written, and as JSON escapes it (SQLite keeps JSON columns as json.dumps wrote them).
        for form in {text, json.dumps(text)[1:-1]}:
            for column in ("object_repr", "actor_name", "reason", "params_text", "changes_text"):
                naming |= Q(**{f"{column}__icontains": form})
    if naming:
        candidates = (
            AuditEntry.objects.exclude(pk__in=seen)
            .annotate(
                params_text=Cast("description_params", TextField()),
                changes_text=Cast("changes", TextField()),
            )
            .filter(naming)
        )
        for entry in candidates.iterator(chunk_size=500):
            rewrite(entry, anywhere_texts)
    return changed


def _scrub_json(value: Any, texts: tuple[str, ...], scrub, replacement: str) -> Any:
    if isinstance(value, str):
        return scrub(value, texts, replacement)
    if isinstance(value, list):
        return [_scrub_json(item, texts, scrub, replacement) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_json(item, texts, scrub, replacement) for key, item in value.items()}
    return value


class AuditContextMiddleware:
    """Keeps the client's address for the request, for the entries it records."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        token = _client_ip.set(request.META.get("REMOTE_ADDR"))
        try:
            return self.get_response(request)
        finally:
            _client_ip.reset(token)
