"""GDPR (AVG) data export and erasure, extensible by the apps that hold member data.

`members` knows only its own tables; loyalty, rewards and segmentation register an exporter
(their part of the member's data, JSON-ready), where they hold personal data an eraser, and
the querysets of the member's objects (whose admin history is rewritten on erasure), in
their AppConfig.ready().

Erasure (`members.services.member_erase`) also reaches the copies Django and its add-ons
make: the admin's change history (`django_admin_log`), sessions, login-throttling logs
(django-axes, when installed) and the invitation imports' files and error reports. The
erasers below for those are registered by MembersConfig.ready(). What stays: ledger reasons
typed by staff (they describe the points, and may name the member: docs/decisions.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Exporter = Callable[[Any], Any]
Eraser = Callable[[Any], None]
# The member's objects in another app, as querysets: (member) -> querysets.
OwnedObjects = Callable[[Any], Iterable[Any]]

_exporters: dict[str, Exporter] = {}
_erasers: list[Eraser] = []
_owned_objects: list[OwnedObjects] = []


def register_exporter(name: str, exporter: Exporter) -> None:
    _exporters[name] = exporter


def register_eraser(eraser: Eraser) -> None:
    if eraser not in _erasers:
        _erasers.append(eraser)


def exporters() -> dict[str, Exporter]:
    return dict(_exporters)


def erasers() -> list[Eraser]:
    return list(_erasers)


def register_owned_objects(provider: OwnedObjects) -> None:
    """Register `provider(member)`, returning querysets of the member's objects."""
    if provider not in _owned_objects:
        _owned_objects.append(provider)


def owned_objects(member) -> list:
    """Querysets of every object of the member: this app's, then the registered ones."""
    from .models import ConsentRecord, Invitation, Member, TermsAcceptance, User

    querysets: list = [
        Member.objects.filter(pk=member.pk),
        User.objects.filter(pk=member.user_id),
        Invitation.objects.filter(member=member),
        ConsentRecord.objects.filter(member=member),
        TermsAcceptance.objects.filter(member=member),
    ]
    for provider in _owned_objects:
        querysets.extend(provider(member))
    return querysets


# --- what erasure removes wherever a copy was made --------------------------------------------


@dataclass(frozen=True)
class PersonalData:
    """The member's identifying texts as they were before erasure.

    `anywhere` may be replaced in any row (an address, a full name, the member as shown);
    `own` adds the single first and last names, replaced only in the member's own rows.
    """

    anywhere: tuple[str, ...]
    own: tuple[str, ...]

    @classmethod
    def of(cls, member, *, earlier: Iterable[str] = ()) -> PersonalData:
        """From the member (and login) before erasure; `earlier` adds names shown before."""
        emails = {member.email}
        if member.user_id is not None and member.user.email:
            emails.add(member.user.email)
        anywhere = {*emails, str(member), *earlier}
        if member.first_name and member.last_name:
            anywhere.add(member.full_name)
        for text in earlier:
            # "First Last (number)": the name alone too.
            name = re.sub(r"\s*\([^()]*\)$", "", text).strip()
            if name and name != text:
                anywhere.add(name)
        own = anywhere | {member.first_name, member.last_name}
        return cls(anywhere=_longest_first(anywhere), own=_longest_first(own))


def _longest_first(texts: Iterable[str]) -> tuple[str, ...]:
    # Two letters or more: replacing "J" everywhere would destroy more than it hides.
    return tuple(sorted({t for t in texts if len(t.strip()) >= 2}, key=len, reverse=True))


def _forms(text: str) -> tuple[str, ...]:
    """The text as written, and as json.dumps writes it (admin change messages are JSON)."""
    escaped = json.dumps(text)[1:-1]
    return (text,) if escaped == text else (text, escaped)


def scrub(value: str, texts: Iterable[str], replacement: str) -> str:
    """`value` with every whole-word occurrence of `texts` (any case) replaced."""
    for text in texts:
        for form in _forms(text):
            pattern = re.compile(r"(?<!\w)" + re.escape(form) + r"(?!\w)", re.IGNORECASE)
            value = pattern.sub(lambda _match: replacement, value)
    return value


def _chunks(values: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def earlier_names(member) -> list[str]:
    """How the admin showed the member and the login before: their change history's names."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from .models import Member, User

    names: set[str] = set()
    for model, pk in ((Member, member.pk), (User, member.user_id)):
        if pk is None:
            continue
        content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
        names.update(
            LogEntry.objects.filter(content_type=content_type, object_id=str(pk)).values_list(
                "object_repr", flat=True
            )
        )
    return sorted(names)


def erase_admin_history(member, *, personal: PersonalData) -> int:
    """Rewrite the admin's change history (after the member is pseudonymised).

    Entries about the member's objects get the object's current name and their change
    message scrubbed of the member's texts; any other entry naming the member (by address,
    full name or as shown) has those texts replaced. Returns the entries changed.
    """
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Q

    replacement = str(member)
    changed: set[int] = set()
    for queryset in owned_objects(member):
        model = queryset.model
        if model._meta.is_composite_pk:
            continue  # composite keys: not in the admin, so no history
        content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
        ids = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        for chunk in _chunks(ids):
            entries = list(LogEntry.objects.filter(content_type=content_type, object_id__in=chunk))
            names: dict[str, str] = {}
            for entry in entries:
                if entry.object_id not in names:
                    obj = model._default_manager.filter(pk=entry.object_id).first()
                    names[entry.object_id] = str(obj)[:200] if obj is not None else ""
                entry.object_repr = names[entry.object_id]
                entry.change_message = scrub(entry.change_message, personal.own, replacement)
                entry.save(update_fields=["object_repr", "change_message"])
                changed.add(entry.pk)
    naming = Q()
    for text in personal.anywhere:
        for form in _forms(text):
            naming |= Q(object_repr__icontains=form) | Q(change_message__icontains=form)
    if naming:
        for entry in LogEntry.objects.filter(naming).exclude(pk__in=changed):
            entry.object_repr = scrub(entry.object_repr, personal.anywhere, replacement)[:200]
            entry.change_message = scrub(entry.change_message, personal.anywhere, replacement)
            entry.save(update_fields=["object_repr", "change_message"])
            changed.add(entry.pk)
    return len(changed)


def erase_audit_log(member, *, personal: PersonalData) -> int:
    """Rewrite the audit log like the admin's history (after the member is pseudonymised):
    entries about the member's objects lose the member's texts, any other entry naming the
    member loses those texts too. The log records members by number, so usually only a
    staff-typed reason or a changed field's old value names them. Returns the entries changed."""
    from loyalty.audit.services import audit_rewrite

    return audit_rewrite(
        about=owned_objects(member),
        own_texts=personal.own,
        anywhere_texts=personal.anywhere,
        scrub=scrub,
        replacement=str(member),
    )


def erased_email(member) -> str:
    """The address an erased member (and their login) keeps: unique, and never deliverable."""
    return f"erased-{member.member_number}@erased.invalid"


def _emails(member) -> set[str]:
    emails = {member.email.lower()}
    if member.user_id is not None and member.user.email:
        emails.add(member.user.email.lower())
    return emails


def erase_sessions(member) -> None:
    """Eraser: end every session of the member's login (they hold its id).

    The sessions stop working at once (erasure makes the password unusable, and Django drops
    a session whose password hash no longer matches); deleting their rows means one pass over
    the sessions table, which is not indexed by user, so a worker does it after the commit."""
    from loyalty.outbox.services import outbox_enqueue

    if member.user_id is not None:
        outbox_enqueue("members.tasks.end_sessions", member.user_id)


def end_sessions(*, user_id: int) -> int:
    """Delete the database sessions of one login; returns how many."""
    from importlib import import_module

    from django.apps import apps
    from django.conf import settings
    from django.utils import timezone

    if not apps.is_installed("django.contrib.sessions"):
        return 0
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store, "get_model_class"):
        return 0  # cache, file or cookie sessions: not in the database; they expire
    ended = 0
    sessions = store.get_model_class().objects.filter(expire_date__gt=timezone.now())
    for session in sessions.iterator(chunk_size=2000):
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            store(session_key=session.session_key).delete()
            ended += 1
    return ended


def erase_login_attempts(member) -> None:
    """Eraser: django-axes' login attempts and logs for the member's address (if installed)."""
    from django.apps import apps

    if not apps.is_installed("axes"):
        return
    emails = _emails(member)
    for model in apps.get_app_config("axes").get_models():
        if not any(field.name == "username" for field in model._meta.get_fields()):
            continue
        for email in emails:
            model._default_manager.filter(username__iexact=email).delete()


def erase_from_invitation_imports(member) -> None:
    """Eraser: the member's rows in uploaded invitation CSVs and in their error reports.

    A row naming the address is emptied in the stored file (the line stays, so the report's
    line numbers still match); a report row keeps its line and reason without the address.
    """
    from .models import InvitationImport

    emails = _emails(member)
    for job in InvitationImport.objects.select_for_update().order_by("pk"):
        errors = job.errors if isinstance(job.errors, list) else []
        scrubbed = [
            {**row, "email": ""}
            if isinstance(row, dict) and str(row.get("email", "")).strip().lower() in emails
            else row
            for row in errors
        ]
        if scrubbed != errors:
            job.errors = scrubbed
            job.save(update_fields=["errors"])
        if job.file:
            _erase_from_csv(job.file, emails)


def _erase_from_csv(field_file, emails: set[str]) -> None:
    storage, name = field_file.storage, field_file.name
    if not storage.exists(name):
        return
    with storage.open(name, "rb") as handle:
        text = handle.read().decode("utf-8-sig", errors="replace")
    # The address as a whole, not inside a longer one (noor@x.nl in anoor@x.nl).
    address = re.compile(
        "|".join(r"(?<![\w.+-])" + re.escape(email) + r"(?![\w.-])" for email in emails),
        re.IGNORECASE,
    )
    if not address.search(text):
        return
    lines = [
        ("\r\n" if line.endswith("\r\n") else "\n") if address.search(line) else line
        for line in text.splitlines(keepends=True)
    ]
    with storage.open(name, "wb") as handle:
        handle.write("".join(lines).encode("utf-8"))
