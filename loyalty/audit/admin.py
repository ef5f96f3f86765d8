"""The audit log in the admin (read-only for everybody) and the mixin that records what a
ModelAdmin saves or deletes."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loyalty.admin_readonly import ReadOnlyAdmin

from .models import AuditAction, AuditEntry
from .services import audit_record, entries_for
from .services import change as old_and_new

HISTORY_ROWS = 50
# Changes that are no field of the object they are recorded on.
OTHER_LABELS = {"balance": _("Points balance")}


def _field(content_type: ContentType | None, name: str):
    model = content_type.model_class() if content_type is not None else None
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def field_label(content_type: ContentType | None, name: str) -> str:
    """The verbose name of a changed field, or its name when the model no longer has it."""
    field = _field(content_type, name)
    if field is not None and hasattr(field, "verbose_name"):
        return str(capfirst(field.verbose_name))
    return str(OTHER_LABELS.get(name, name))


def _shown(value, field=None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, list):
        return ", ".join(_shown(item, field) for item in value) or "—"
    choices = dict(field.flatchoices) if getattr(field, "choices", None) else {}
    return str(choices.get(value, value))


def changes_table(entry: AuditEntry) -> str:
    """The changed fields as a small table: field, old value, new value."""
    if not entry.changes:
        return "—"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                field_label(entry.content_type, name),
                _shown(
                    value.get("old") if isinstance(value, dict) else None,
                    _field(entry.content_type, name),
                ),
                _shown(
                    value.get("new") if isinstance(value, dict) else value,
                    _field(entry.content_type, name),
                ),
            )
            for name, value in entry.changes.items()
        ),
    )
    return format_html(
        '<table class="audit-changes"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>'
        "<tbody>{}</tbody></table>",
        gettext("field"),
        gettext("old value"),
        gettext("new value"),
        rows,
    )


def log_url_for(obj: models.Model) -> str:
    """The audit log filtered to one object."""
    content_type = ContentType.objects.get_for_model(obj, for_concrete_model=False)
    query = urlencode({"content_type": content_type.pk, "object_id": str(obj.pk)})
    return f"{reverse('admin:audit_auditentry_changelist')}?{query}"


def may_read_log(request: HttpRequest) -> bool:
    return request.user.has_perm("audit.view_auditentry")


def object_tools(request: HttpRequest, obj: models.Model) -> list[tuple[str, str]]:
    """An "Audit log" link for an object's page (see `admin_extensions.register`)."""
    return [(_("Audit log"), log_url_for(obj))] if may_read_log(request) else []


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_shown", "action", "object_shown", "summary", "reason"]
    list_filter = [
        ("actor", admin.RelatedOnlyFieldListFilter),
        "action",
        ("content_type", admin.RelatedOnlyFieldListFilter),
        "created_at",
    ]
    search_fields = ["object_repr", "=object_id", "actor_name", "reason"]
    list_select_related = ["actor", "content_type"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "created_at",
        "actor_shown",
        "ip_address",
        "action",
        "content_type",
        "object_id",
        "object_shown",
        "summary",
        "changes_shown",
        "reason",
    ]
    readonly_fields = fields

    @admin.display(description=_("staff user"), ordering="actor_name")
    def actor_shown(self, entry: AuditEntry) -> str:
        return entry.actor_name or gettext("system")

    @admin.display(description=_("object"), ordering="object_repr")
    def object_shown(self, entry: AuditEntry) -> str:
        if entry.content_type is None:
            return entry.object_repr or "—"
        return format_html(
            "{} <small>({} {})</small>",
            entry.object_repr or "—",
            capfirst(entry.content_type.name),
            entry.object_id,
        )

    @admin.display(description=_("description"))
    def summary(self, entry: AuditEntry) -> str:
        return entry.summary or entry.get_action_display()

    @admin.display(description=_("changes"))
    def changes_shown(self, entry: AuditEntry) -> str:
        return changes_table(entry)

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # The object pages link here filtered to their object.
        return lookup in ("content_type", "object_id") or super().lookup_allowed(
            lookup, value, request
        )


class AuditedModelAdmin(admin.ModelAdmin):
    """Mix in first: records every add, change and delete made on this ModelAdmin's pages,
    with the form's changed fields (old and new values), in the admin's own transaction; the
    object's History page shows its audit entries below Django's history."""

    object_history_template = "admin/audit/object_history.html"
    # Fields whose values must not be copied into the log (secrets).
    audit_hidden_fields: tuple[str, ...] = ()
    # False where the service that adds the object records the addition itself.
    audit_adds = True

    def _form_changes(self, form) -> dict:
        found = {}
        for name in form.changed_data:
            if name in self.audit_hidden_fields:
                found[name] = {"old": "***", "new": "***"}
                continue
            field = form.fields.get(name)
            old = form.initial.get(name)
            if field is not None and hasattr(field, "queryset") and old is not None:
                old = _objects(field, old)
            found[name] = old_and_new(old, form.cleaned_data.get(name))
        return found

    # Recorded where Django writes its own history of the same change (the log_* hooks, called
    # in the admin's transaction), so a ModelAdmin that overrides save_model to call a service
    # is audited too; save_form keeps the form's changes on the object until then.
    def save_form(self, request, form, change: bool):
        obj = super().save_form(request, form, change)
        obj._audit_changes = self._form_changes(form)
        return obj

    def _record(self, request, obj, action: str) -> None:
        changes = getattr(obj, "_audit_changes", {})
        if obj.pk is None or (action == AuditAction.CHANGED and not changes):
            return  # refused by the service, or nothing changed
        audit_record(
            actor=request.user, action=action, obj=obj, changes=changes, admin_history=False
        )

    def log_addition(self, request, obj, message):
        if self.audit_adds:
            self._record(request, obj, AuditAction.ADDED)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._record(request, obj, AuditAction.CHANGED)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._record(request, obj, AuditAction.DELETED)
        return super().log_deletions(request, queryset)

    def history_view(self, request, object_id, extra_context=None):
        extra = dict(extra_context or {})
        obj = self.get_object(request, admin.utils.unquote(object_id))
        if obj is not None and may_read_log(request):
            extra["audit_rows"] = [
                {
                    "entry": entry,
                    "actor": entry.actor_name or gettext("system"),
                    "summary": entry.summary or entry.get_action_display(),
                    "changes": changes_table(entry),
                }
                for entry in entries_for(obj).select_related("content_type")[:HISTORY_ROWS]
            ]
            extra["audit_log_url"] = log_url_for(obj)
        return super().history_view(request, object_id, extra)


def _objects(field, old):
    """The objects a model choice field's initial value (ids) stood for, by their names."""
    if isinstance(old, list | tuple):
        ids = [item.pk if isinstance(item, models.Model) else item for item in old]
        return sorted(
            str(item) for item in field.queryset.model._default_manager.filter(pk__in=ids)
        )
    if isinstance(old, models.Model):
        return old
    return field.queryset.model._default_manager.filter(pk=old).first() or old
