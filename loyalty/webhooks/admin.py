"""Webhooks in the admin: partners' endpoints (secret, rotation, test event, enable) and the
delivery log (read-only, filterable, with "resend")."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, ngettext

from loyalty.admin_readonly import ReadOnlyAdmin
from loyalty.audit.admin import AuditedModelAdmin
from loyalty.audit.models import AuditAction
from loyalty.audit.services import audit_record
from loyalty.errors import ApplicationError

from . import selectors, services
from .models import EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=_("event types"),
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("The events sent to this URL; none selected means all of them."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["partner", "url", "description", "event_types", "is_active"]

    def clean_url(self) -> str:
        try:
            return services.url_checked(self.cleaned_data["url"])
        except ApplicationError as error:
            raise forms.ValidationError(str(error.message), code=error.code) from error

    def clean_event_types(self) -> list[str]:
        try:
            return services.event_types_checked(self.cleaned_data["event_types"])
        except ApplicationError as error:
            raise forms.ValidationError(str(error.message), code=error.code) from error


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditedModelAdmin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "partner", "is_active", "consecutive_failures", "disabled_reason"]
    list_filter = ["is_active", "partner"]
    search_fields = ["url", "description", "partner__name"]
    list_select_related = ["partner"]
    readonly_fields = [
        "secret",
        "previous_secret_expires_at",
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
        "failing_since",
        "created_at",
    ]
    actions = ["send_test_event", "rotate_secret", "enable"]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return [*fields, "partner"] if obj is not None else fields

    def save_model(self, request, obj, form, change) -> None:
        """Through the services (which check the URL and the event types once more)."""
        fields = {
            "url": form.cleaned_data["url"],
            "event_types": form.cleaned_data["event_types"],
            "description": form.cleaned_data.get("description", ""),
        }
        if change:
            saved = services.endpoint_update(
                endpoint=obj, is_active=form.cleaned_data.get("is_active", True), **fields
            )
        else:
            saved = services.endpoint_create(partner=form.cleaned_data["partner"], **fields)
        obj.pk, obj._state = saved.pk, saved._state
        obj.secret = saved.secret

    def _for_each(self, request, queryset, action, done_message, audit=None) -> None:
        """`audit`: (action, description) recorded with each change, in its transaction."""
        done = 0
        for endpoint in queryset:
            try:
                with transaction.atomic():
                    action(endpoint=endpoint)
                    if audit is not None:
                        audit_record(
                            actor=request.user,
                            action=audit[0],
                            obj=endpoint,
                            description=audit[1],
                            params={"url": endpoint.url},
                        )
                done += 1
            except ApplicationError as error:
                self.message_user(request, f"{endpoint}: {error.message}", messages.ERROR)
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)

    @admin.action(description=_("Send a test event"), permissions=["change"])
    def send_test_event(self, request, queryset) -> None:
        self._for_each(
            request,
            queryset,
            services.test_event_send,
            lambda done: (
                ngettext(
                    "A test event is on its way to %(count)d endpoint; see the delivery log.",
                    "A test event is on its way to %(count)d endpoints; see the delivery log.",
                    done,
                )
                % {"count": done}
            ),
        )

    @admin.action(
        description=_("Rotate the signing secret (the old one stays valid for 24 hours)"),
        permissions=["change"],
    )
    def rotate_secret(self, request, queryset) -> None:
        self._for_each(
            request,
            queryset,
            services.secret_rotate,
            lambda done: (
                ngettext(
                    "The secret of %(count)d endpoint was rotated.",
                    "The secrets of %(count)d endpoints were rotated.",
                    done,
                )
                % {"count": done}
            ),
            audit=(
                AuditAction.WEBHOOK_SECRET_ROTATED,
                gettext_noop("Signing secret of %(url)s rotated"),
            ),
        )

    @admin.action(description=_("Enable again"), permissions=["change"])
    def enable(self, request, queryset) -> None:
        self._for_each(
            request,
            queryset.filter(is_active=False),
            services.endpoint_enable,
            lambda done: (
                ngettext(
                    "%(count)d endpoint was enabled.", "%(count)d endpoints were enabled.", done
                )
                % {"count": done}
            ),
            audit=(AuditAction.WEBHOOK_ENABLED, gettext_noop("Webhook endpoint %(url)s enabled")),
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    # The message id is what a partner quotes. The endpoint's URL (in the filter and on the
    # page) and when the next attempt is due would widen the list past 1366 px.
    list_display = [
        "event_id",
        "event_type",
        "partner",
        "status",
        "attempts",
        "last_status_code",
        "delivered_at",
    ]
    list_filter = ["status", "event__type", "endpoint"]
    search_fields = ["event__id", "endpoint__url"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields] + ["payload"]
    actions = ["resend"]
    show_full_result_count = False

    def get_queryset(self, request):
        return selectors.deliveries_for_log()

    @admin.display(description=_("partner"), ordering="endpoint__partner__name")
    def partner(self, delivery: WebhookDelivery):
        return delivery.endpoint.partner

    @admin.display(description=_("event"), ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type_label

    @admin.display(description=_("payload"))
    def payload(self, delivery: WebhookDelivery) -> dict:
        return delivery.event.payload

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.action(description=_("Resend"), permissions=["resend"])
    def resend(self, request, queryset) -> None:
        done = 0
        for delivery in queryset:
            try:
                services.delivery_resend(delivery=delivery)
                done += 1
            except ApplicationError as error:
                self.message_user(request, f"{delivery}: {error.message}", messages.ERROR)
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(count)d delivery will be sent again.",
                    "%(count)d deliveries will be sent again.",
                    done,
                )
                % {"count": done},
                messages.SUCCESS,
            )


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["id"]
    readonly_fields = ["id", "type", "payload", "created_at"]
    show_full_result_count = False
