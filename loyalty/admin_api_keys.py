"""Partners' API keys in the admin: created with scopes and an expiry, the key shown once,
revoked by an action; only the prefix can be read back."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework_api_key.models import APIKey

from .audit.admin import AuditedModelAdmin
from .errors import ApplicationError
from .partner_api.models import ApiScope, PartnerAPIKey
from .services import api_key_create, api_key_revoke

# The library's own key model is not used: partners' keys have scopes and a partner.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


class PartnerAPIKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = PartnerAPIKey
        fields = ["partner", "name", "scopes", "expiry_date"]


@admin.register(PartnerAPIKey)
class PartnerAPIKeyAdmin(AuditedModelAdmin, admin.ModelAdmin):
    audit_adds = False  # api_key_create records the new key
    form = PartnerAPIKeyForm
    list_display = [
        "prefix",
        "name",
        "partner",
        "scope_list",
        "expiry_date",
        "last_used_at",
        "revoked",
        "created",
    ]
    list_filter = ["partner", "revoked"]
    search_fields = ["prefix", "name", "partner__name"]
    list_select_related = ["partner"]
    readonly_fields = ["prefix", "created", "last_used_at", "revoked", "created_by"]
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request, obj=None):
        # The partner of an existing key never changes: a new partner gets a new key.
        return [*self.readonly_fields, "partner"] if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked, not deleted: the prefix stays recognisable in logs

    @admin.display(description=_("scopes"))
    def scope_list(self, api_key: PartnerAPIKey) -> str:
        return ", ".join(api_key.scopes)

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        try:
            record, key = api_key_create(
                partner=form.cleaned_data["partner"],
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.cleaned_data.get("expiry_date"),
                created_by=request.user,
            )
        except ApplicationError as error:  # the form checked the same; kept for safety
            self.message_user(request, str(error.message), messages.ERROR)
            return
        obj.pk = record.pk
        obj.prefix = record.prefix
        self.message_user(
            request,
            _(
                "The API key for %(partner)s is: %(key)s — copy it now: it is stored only hashed "
                "and is not shown again."
            )
            % {"partner": record.partner, "key": key},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected keys (cannot be undone)"))
    def revoke_selected(self, request, queryset) -> None:
        keys = list(queryset.filter(revoked=False))
        for api_key in keys:
            api_key_revoke(api_key=api_key, by=request.user)
        self.message_user(
            request,
            ngettext("%(count)d key revoked.", "%(count)d keys revoked.", len(keys))
            % {"count": len(keys)},
            messages.SUCCESS,
        )


class PartnerAPIKeyInline(admin.TabularInline):
    model = PartnerAPIKey
    fields = ["prefix", "name", "scopes", "expiry_date", "last_used_at", "revoked"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # keys are made on their own page, where the key can be shown once
