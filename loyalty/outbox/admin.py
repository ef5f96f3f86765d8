"""The outbox in the admin: what is pending, what the broker refused, and a way to retry."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from loyalty.admin_readonly import ReadOnlyAdmin

from .models import OutboxMessage
from .services import outbox_dispatch_now


class PendingFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", _("Pending")), ("dispatched", _("Handed to the broker"))]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(dispatched_at__isnull=True)
        if self.value() == "dispatched":
            return queryset.filter(dispatched_at__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["task", "created_at", "dispatched_at", "attempts", "last_error"]
    list_filter = [PendingFilter, "task"]
    readonly_fields = [field.name for field in OutboxMessage._meta.fields]
    actions = ["dispatch_now"]
    show_full_result_count = False

    @admin.action(description=_("Hand to the broker now"), permissions=["view"])
    def dispatch_now(self, request, queryset) -> None:
        pending = list(queryset.filter(dispatched_at__isnull=True).values_list("pk", flat=True))
        done = outbox_dispatch_now(message_ids=pending)
        level = messages.SUCCESS if done == len(pending) else messages.WARNING
        self.message_user(
            request,
            ngettext(
                "%(done)d of %(count)d pending message handed to the broker.",
                "%(done)d of %(count)d pending messages handed to the broker.",
                len(pending),
            )
            % {"done": done, "count": len(pending)},
            level,
        )
