"""Campaigns in the back office: messages with preview and test send."""

from __future__ import annotations

import logging
import time

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loyalty.admin_paginator import EstimatedCountPaginator
from loyalty.admin_readonly import ReadOnlyAdmin
from loyalty.admin_singleton import SingletonAdmin
from loyalty.audit.admin import AuditedModelAdmin
from loyalty.errors import ApplicationError, ValidationFailed
from loyalty.formats import fraction_points_text, money_text, points_text
from members.admin import search_by_member
from members.models import Language
from segmentation.models import Quadrant, Segment

from . import automations, results, selectors, services, tasks
from .errors import AudienceEmpty
from .forms import MessageForm, PreviewForm, TestSendForm
from .models import (
    MESSAGE_LANGUAGES,
    Automation,
    AutomationTrigger,
    BonusKind,
    Campaign,
    CampaignKind,
    CampaignSettings,
    CampaignStatus,
    CampaignTransition,
    LinkClick,
    Message,
    Recipient,
    RecipientStatus,
    SkipReason,
    SuppressedAddress,
)

# The demo's e-mail backends: they write the message where the server runs, nobody gets it.
_WRITTEN_NOT_SENT = frozenset(
    {
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.filebased.EmailBackend",
    }
)

logger = logging.getLogger(__name__)


def _admin_context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


def _language_names(languages: list[str]) -> str:
    names = dict(Language.choices)
    return ", ".join(str(names[language]) for language in languages)


@admin.register(Message)
class MessageAdmin(AuditedModelAdmin, admin.ModelAdmin):
    form = MessageForm
    list_display = ["name", "complete_languages", "missing_translations", "updated_at"]
    search_fields = ["name", "subject_nl", "subject_en"]
    readonly_fields = ["missing_translations"]
    fieldsets = [
        (None, {"fields": ["name", "missing_translations"]}),
        *(
            (
                _("Dutch") if language == "nl" else _("English"),
                {
                    "fields": [
                        f"{part}_{language}" for part in ("subject", "preheader", "html", "text")
                    ]
                },
            )
            for language in MESSAGE_LANGUAGES
        ),
    ]

    @admin.display(description=_("languages"))
    def complete_languages(self, message: Message) -> str:
        return _language_names(message.languages) or "-"

    @admin.display(description=_("missing translations"))
    def missing_translations(self, message: Message) -> str:
        if message.pk is None:
            return "-"
        missing = message.missing_languages
        if not missing:
            return gettext("None: complete in every language.")
        return gettext("%(languages)s (members who read it get the program's default language)") % {
            "languages": _language_names(missing)
        }

    def get_urls(self):
        return [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="campaigns_message_preview",
            ),
        ] + super().get_urls()

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The message as any member (or the sample member) gets it, HTML and text side by
        side, and "send a test" to an address (POST, needs the change permission)."""
        message = get_object_or_404(Message, pk=pk)
        if not self.has_view_or_change_permission(request, message):
            raise PermissionDenied
        initial = {"language": request.GET.get("language") or request.LANGUAGE_CODE[:2]}
        form = PreviewForm(request.GET or None, initial=initial)
        test_form = TestSendForm(request.POST or None, initial=initial)
        member, language = None, initial["language"]
        if form.is_bound and form.is_valid():
            member, language = form.cleaned_data["member"], form.cleaned_data["language"]
        if request.method == "POST":
            if not self.has_change_permission(request, message):
                raise PermissionDenied
            if test_form.is_valid():
                data = test_form.cleaned_data
                member, language = data["member"], data["language"]
                try:
                    services.message_test_send(
                        message=message, to=data["to"], member=member, language=language
                    )
                except ApplicationError as error:
                    messages.error(request, str(error.message))
                else:
                    if settings.EMAIL_BACKEND in _WRITTEN_NOT_SENT:
                        messages.warning(
                            request,
                            gettext(
                                "The test for %(to)s was not delivered: this installation "
                                "writes e-mail to the server's console or a folder instead of "
                                "sending it (EMAIL_URL, see the README)."
                            )
                            % {"to": data["to"]},
                        )
                    else:
                        messages.success(
                            request, gettext("A test was sent to %(to)s.") % {"to": data["to"]}
                        )
        rendered, error = None, None
        try:
            rendered = services.message_preview(message=message, member=member, language=language)
        except ApplicationError as problem:
            error = str(problem.message)
        return render(
            request,
            "admin/campaigns/message_preview.html",
            _admin_context(
                request,
                gettext("Preview of %(message)s") % {"message": message},
                opts=Message._meta,
                original=message,
                form=form,
                test_form=test_form,
                rendered=rendered,
                error=error,
                member=member,
                can_send=self.has_change_permission(request, message),
            ),
        )


# --- campaigns ------------------------------------------------------------------------------


def _ticks(label, choices, help_text: str = "") -> forms.MultipleChoiceField:
    """A choice of several keys from `choices`, as tick boxes (stored as a JSON list)."""
    return forms.MultipleChoiceField(
        label=capfirst(label),  # as the admin writes the labels of model fields
        choices=choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=help_text,
    )


class CampaignForm(forms.ModelForm):
    segments = _ticks(_("RFM segments"), Segment.choices)
    quadrants = _ticks(_("matrix quadrants"), Quadrant.choices)
    exclude_segments = _ticks(_("except RFM segments"), Segment.choices)
    exclude_quadrants = _ticks(_("except quadrants"), Quadrant.choices)
    languages = _ticks(
        _("languages"),
        Language.choices,
        _("Only members who read these languages; none chosen means every language."),
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "message",
            "segments",
            "quadrants",
            "rule_segments",
            "exclude_segments",
            "exclude_quadrants",
            "exclude_rule_segments",
            "exclude_redeemed_days",
            "tiers",
            "languages",
            "holdout_percent",
            "scheduled_at",
            "bonus_kind",
            "bonus_points",
            "bonus_multiplier",
            "bonus_days",
            "bonus_min_amount",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk and "holdout_percent" in self.fields:
            self.fields["holdout_percent"].initial = CampaignSettings.load().holdout_percent
        # Left out of a form (no offer), the bonus fields keep their defaults.
        for name in ("bonus_kind", "bonus_days"):
            if name in self.fields:
                self.fields[name].required = False

    def clean_bonus_kind(self) -> str:
        return self.cleaned_data.get("bonus_kind") or BonusKind.NONE

    def clean_bonus_days(self) -> int:
        days = self.cleaned_data.get("bonus_days")
        return days if days is not None else Campaign._meta.get_field("bonus_days").default

    def clean(self):
        cleaned = super().clean()
        if not (
            cleaned.get("segments") or cleaned.get("quadrants") or cleaned.get("rule_segments")
        ):
            raise forms.ValidationError(str(AudienceEmpty.default_message))
        return cleaned


_CHOICE_FIELDS = ("segments", "quadrants", "exclude_segments", "exclude_quadrants", "languages")


def _names(keys: list[str], choices) -> str:
    labels = dict(choices)
    return ", ".join(str(labels.get(key, key)) for key in keys) or "-"


CAMPAIGN_ACTIONS = {
    "schedule": (_("Schedule"), (CampaignStatus.DRAFT,)),
    "unschedule": (_("Back to draft"), (CampaignStatus.SCHEDULED,)),
    "send_now": (_("Send now"), (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)),
    "pause": (_("Pause"), (CampaignStatus.SENDING,)),
    "resume": (_("Resume"), (CampaignStatus.PAUSED, CampaignStatus.FAILED)),
    "cancel": (
        _("Cancel"),
        (
            CampaignStatus.DRAFT,
            CampaignStatus.SCHEDULED,
            CampaignStatus.SENDING,
            CampaignStatus.PAUSED,
            CampaignStatus.FAILED,
        ),
    ),
}


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{fraction_points_text(rate * 100, 1)} %"


def _points_interval(interval: results.Interval | None) -> tuple[str, str, str]:
    """The difference and its interval in percentage points, as people read them."""
    if interval is None:
        return "-", "", ""
    low, high = interval.low * 100, interval.high * 100
    return (
        fraction_points_text(interval.estimate * 100, 1),
        fraction_points_text(low, 1),
        fraction_points_text(high, 1),
    )


def _money_interval(interval: results.Interval | None) -> tuple[str, str, str]:
    if interval is None:
        return "-", "", ""
    return money_text(interval.estimate), money_text(interval.low), money_text(interval.high)


def results_context(campaign: Campaign | None) -> dict:
    """The results section of a campaign's or an automation's page (from the cache)."""
    report = selectors.campaign_results_cached(campaign=campaign) if campaign else None
    return {
        "results": report,
        "results_total": results_rows(report.total) if report else None,
        "results_segments": [results_rows(row) for row in report.segments] if report else [],
    }


def results_rows(row: selectors.ResultRow) -> dict:
    """One line of results, formatted for a table (numbers in the reader's language)."""
    conversion, conversion_low, conversion_high = _points_interval(row.conversion_uplift)
    spend, spend_low, spend_high = _money_interval(row.spend_uplift)
    return {
        "row": row,
        "label": row.segment_label,
        "rate_mailed": _percent(row.mailed.rate),
        "rate_holdout": _percent(row.control.rate),
        "conversion": conversion,
        "conversion_low": conversion_low,
        "conversion_high": conversion_high,
        "conversion_significant": results.verdict(row.conversion_uplift)
        in (results.Verdict.MORE, results.Verdict.LESS),
        "spend_mailed": row.mailed.spend_per_member,
        "spend_holdout": row.control.spend_per_member,
        "spend": spend,
        "spend_low": spend_low,
        "spend_high": spend_high,
        "spend_significant": results.verdict(row.spend_uplift)
        in (results.Verdict.MORE, results.Verdict.LESS),
    }


class TransitionInline(admin.TabularInline):
    model = CampaignTransition
    extra = 0
    can_delete = False
    fields = ["at", "from_status", "to_status", "by", "note"]
    readonly_fields = fields
    verbose_name_plural = _("history")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(AuditedModelAdmin, admin.ModelAdmin):
    form = CampaignForm
    list_display = ["name", "status", "scheduled_at", "message", "progress_bar", "created_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    autocomplete_fields = ["message"]
    filter_horizontal = ["rule_segments", "exclude_rule_segments", "tiers"]
    inlines = [TransitionInline]
    fieldsets = [
        (None, {"fields": ["name", "message", "status_text", "progress_bar", "audience_text"]}),
        (_("Audience"), {"fields": ["segments", "quadrants", "rule_segments"]}),
        (
            _("Exclusions and filters"),
            {
                "fields": [
                    "exclude_segments",
                    "exclude_quadrants",
                    "exclude_rule_segments",
                    "exclude_redeemed_days",
                    "tiers",
                    "languages",
                ]
            },
        ),
        (_("Sending"), {"fields": ["holdout_percent", "holdout_seed", "scheduled_at"]}),
        (
            _("Bonus offer"),
            {
                "fields": [
                    "bonus_kind",
                    "bonus_points",
                    "bonus_multiplier",
                    "bonus_days",
                    "bonus_min_amount",
                    "bonus_totals_text",
                ],
                "description": _(
                    "Extra points on the purchases of the members this campaign was sent to, "
                    "within the days after their e-mail (never the holdout)."
                ),
            },
        ),
    ]
    audit_adds = True

    readonly_fields = [
        "status_text",
        "progress_bar",
        "audience_text",
        "holdout_seed",
        "bonus_totals_text",
    ]

    def get_queryset(self, request):
        # An automation's campaign is seen and switched through its automation.
        return super().get_queryset(request).filter(kind=CampaignKind.ONE_OFF)

    def has_change_permission(self, request, obj=None) -> bool:
        # Only a draft is edited; the buttons (send_campaign) move the others along.
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status not in (CampaignStatus.DRAFT, CampaignStatus.CANCELLED):
            return False  # its recipients are the record of what was sent
        return super().has_delete_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        if obj is None or obj.status == CampaignStatus.DRAFT:
            return self.fieldsets
        # Read-only: the choices by name instead of the stored keys.
        shown = {name: f"{name}_names" for name in _CHOICE_FIELDS}
        return [
            (title, {**options, "fields": [shown.get(f, f) for f in options["fields"]]})
            for title, options in self.fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            fields += [f"{name}_names" for name in _CHOICE_FIELDS]
        return fields

    @admin.display(description=_("RFM segments"))
    def segments_names(self, campaign: Campaign) -> str:
        return _names(campaign.segments, Segment.choices)

    @admin.display(description=_("matrix quadrants"))
    def quadrants_names(self, campaign: Campaign) -> str:
        return _names(campaign.quadrants, Quadrant.choices)

    @admin.display(description=_("except RFM segments"))
    def exclude_segments_names(self, campaign: Campaign) -> str:
        return _names(campaign.exclude_segments, Segment.choices)

    @admin.display(description=_("except quadrants"))
    def exclude_quadrants_names(self, campaign: Campaign) -> str:
        return _names(campaign.exclude_quadrants, Quadrant.choices)

    @admin.display(description=_("languages"))
    def languages_names(self, campaign: Campaign) -> str:
        return _names(campaign.languages, Language.choices)

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("status"))
    def status_text(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return CampaignStatus.DRAFT.label
        text = campaign.get_status_display()
        if campaign.awaiting_confirmation:
            text = gettext(
                "%(status)s: the scheduled time passed long ago; send now to confirm, or cancel"
            ) % {"status": text}
        return text

    @admin.display(description=_("progress"))
    def progress_bar(self, campaign: Campaign):
        if campaign.pk is None or campaign.status in (
            CampaignStatus.DRAFT,
            CampaignStatus.SCHEDULED,
        ):
            return "-"
        progress = selectors.campaign_progress(campaign=campaign)
        return format_html(
            '<progress max="100" value="{}" style="width:12em" aria-label="{}"></progress> {}',
            progress.percent,
            gettext("Progress"),
            gettext("%(sent)s of %(to_send)s sent, %(failed)s failed, %(waiting)s waiting")
            % {
                "sent": points_text(progress.sent),
                "to_send": points_text(progress.to_send),
                "failed": points_text(progress.failed),
                "waiting": points_text(progress.waiting),
            },
        )

    @admin.display(description=_("bonus points awarded / their cost"))
    def bonus_totals_text(self, campaign: Campaign) -> str:
        return _bonus_totals_text(campaign)

    @admin.display(description=_("audience"))
    def audience_text(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return gettext("Save the draft to see the estimated audience.")
        if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            estimate = selectors.audience_estimate(campaign=campaign)
            return gettext(
                "About %(members)s members now: %(holdout)s in the holdout, %(mailed)s to mail "
                "(before the frequency cap)."
            ) % {
                "members": points_text(estimate.members),
                "holdout": points_text(estimate.holdout),
                "mailed": points_text(estimate.mailed),
            }
        progress = selectors.campaign_progress(campaign=campaign)
        reasons = dict(SkipReason.choices)
        skipped = ", ".join(
            f"{reasons.get(reason, reason)}: {points_text(count)}"
            for reason, count in selectors.skip_reasons(campaign=campaign).items()
        )
        text = gettext(
            "Frozen audience %(members)s: %(holdout)s in the holdout, %(skipped)s skipped."
        ) % {
            "members": points_text(progress.audience),
            "holdout": points_text(progress.holdout),
            "skipped": points_text(progress.skipped),
        }
        return f"{text} {skipped}".strip()

    def get_urls(self):
        return [
            path(
                "<int:pk>/do/<str:action>/",
                self.admin_site.admin_view(self.action_view),
                name="campaigns_campaign_action",
            ),
            path(
                "compare/",
                self.admin_site.admin_view(self.compare_view),
                name="campaigns_campaign_compare",
            ),
        ] + super().get_urls()

    def action_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        """The buttons: each calls one service, as the staff user, and says what happened."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if action == "duplicate":
            if not self.has_add_permission(request):
                raise PermissionDenied
            source = get_object_or_404(Campaign, pk=pk)
            copy = services.campaign_duplicate(campaign=source, by=request.user)
            messages.success(
                request, gettext("This is a new draft, copied from %(name)s.") % {"name": source}
            )
            return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[copy.pk]))
        if not request.user.has_perm("campaigns.send_campaign") or action not in CAMPAIGN_ACTIONS:
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            if action == "schedule":
                if campaign.scheduled_at is None:
                    raise ValidationFailed(gettext("Set the time to send it first, and save."))
                services.campaign_schedule(
                    campaign=campaign, at=campaign.scheduled_at, by=request.user
                )
            elif action == "send_now":
                services.campaign_send_now(campaign=campaign, by=request.user)
            else:
                getattr(services, f"campaign_{action}")(campaign=campaign, by=request.user)
        except ApplicationError as error:
            messages.error(request, str(error.message))
        else:
            campaign.refresh_from_db()
            messages.success(
                request,
                gettext("The campaign is now %(status)s.")
                % {"status": campaign.get_status_display().lower()},
            )
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        buttons = []
        if campaign is not None and request.user.has_perm("campaigns.send_campaign"):
            buttons = [
                {"action": action, "label": label}
                for action, (label, states) in CAMPAIGN_ACTIONS.items()
                if campaign.status in states
            ]
        if campaign is not None and self.has_add_permission(request):
            buttons.append({"action": "duplicate", "label": gettext("Duplicate")})
        extra = {
            **(extra_context or {}),
            "campaign_buttons": buttons,
            "auto_refresh": campaign is not None and campaign.status == CampaignStatus.SENDING,
            **results_context(campaign),
        }
        return super().change_view(request, object_id, form_url, extra)

    # The comparison page computes missing results for at most this long, then leaves the rest
    # to a worker: 25 campaigns of 500,000 recipients would take half a minute.
    COMPARE_BUDGET_SECONDS = 1.0

    def compare_view(self, request: HttpRequest) -> HttpResponse:
        """The campaigns that were sent, newest first, with their key figures and uplift."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        deadline = time.monotonic() + self.COMPARE_BUDGET_SECONDS
        rows, computing = [], []
        for campaign in selectors.compared_campaigns():
            report = selectors.campaign_results_cached(
                campaign=campaign, compute=time.monotonic() < deadline
            )
            if report is not None:
                rows.append({"campaign": campaign, "report": report, **results_rows(report.total)})
            else:
                rows.append({"campaign": campaign, "computing": True})
                computing.append(campaign)
        if computing:
            try:
                tasks.results_warm.delay()
            except Exception:  # the broker is away: the periodic refresh computes them later
                logger.warning("results_warm not queued", exc_info=True)
        return render(
            request,
            "admin/campaigns/campaign/compare.html",
            _admin_context(
                request,
                gettext("Compare campaigns"),
                opts=Campaign._meta,
                rows=rows,
                compared=selectors.COMPARED,
            ),
        )


@admin.register(CampaignSettings)
class CampaignSettingsAdmin(AuditedModelAdmin, SingletonAdmin):
    pass


class RecipientStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return RecipientStatus.choices

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


class LinkClickInline(admin.TabularInline):
    model = LinkClick
    extra = 0
    can_delete = False
    fields = ["url", "at"]
    readonly_fields = fields
    verbose_name_plural = _("links clicked (first click per link)")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdmin):
    list_display = [
        "email",
        "campaign",
        "occurrence",
        "status",
        "skip_reason",
        "segment_text",
        "tier",
        "sent_at",
        "tracked",
    ]
    inlines = [LinkClickInline]
    list_filter = [RecipientStatusFilter, "campaign"]
    search_fields = ["member__member_number"]
    search_help_text = _("A member number or a member's e-mail address.")
    list_select_related = ["campaign"]
    # Campaigns of hundreds of thousands: estimated counts, no count per filter choice, and a
    # search by indexed equality instead of LIKE '%...%' over every row (issue 16).
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    show_facets = admin.ShowFacets.NEVER
    # The keys stored at send time, shown by their names in the reader's language.
    readonly_fields = ["language_text", "segment_text", "quadrant_text"]

    def get_fields(self, request, obj=None):
        shown = {
            "language": "language_text",
            "segment": "segment_text",
            "quadrant": "quadrant_text",
        }
        fields = [f for f in super().get_fields(request, obj) if f not in shown.values()]
        return [shown.get(name, name) for name in fields]

    # The tracking columns in one (their times are on the recipient's page): five date columns
    # made the list wider than a 1366 px screen.
    TRACKED = (
        ("opened_at", _("opened")),
        ("clicked_at", _("clicked")),
        ("bounced_at", _("bounced")),
        ("complained_at", _("complained")),
        ("unsubscribed_at", _("unsubscribed")),
    )

    @admin.display(description=_("what happened"))
    def tracked(self, recipient: Recipient) -> str:
        return ", ".join(str(label) for field, label in self.TRACKED if getattr(recipient, field))

    def get_search_results(self, request, queryset, search_term):
        return search_by_member(queryset, search_term, "member")

    @admin.display(description=_("language"), ordering="language")
    def language_text(self, recipient: Recipient) -> str:
        return _names([recipient.language] if recipient.language else [], Language.choices)

    @admin.display(description=_("RFM segment"), ordering="segment")
    def segment_text(self, recipient: Recipient) -> str:
        return _names([recipient.segment] if recipient.segment else [], Segment.choices)

    @admin.display(description=_("quadrant"), ordering="quadrant")
    def quadrant_text(self, recipient: Recipient) -> str:
        return _names([recipient.quadrant] if recipient.quadrant else [], Quadrant.choices)


@admin.register(SuppressedAddress)
class SuppressedAddressAdmin(AuditedModelAdmin, admin.ModelAdmin):
    list_display = ["email", "reason", "note", "created_at"]
    list_filter = ["reason"]
    search_fields = ["email"]


def _bonus_totals_text(campaign: Campaign) -> str:
    if campaign.pk is None or campaign.started_at is None:
        return "-"
    totals = selectors.campaign_bonus_totals(campaign)
    return gettext("%(points)s points / %(cost)s") % {
        "points": points_text(totals.points),
        "cost": money_text(totals.cost),
    }


# The automation's bonus offer: the fields of the campaign it owns (docs/campaigns.md).
BONUS_FIELDS = ("bonus_kind", "bonus_points", "bonus_multiplier", "bonus_days", "bonus_min_amount")


class AutomationForm(forms.ModelForm):
    """The automation's own fields and the bonus offer of its campaign, checked by the
    campaign's own rules."""

    # Left out of a post: no offer, the default days.
    bonus_kind = Campaign._meta.get_field("bonus_kind").formfield(required=False)
    bonus_points = Campaign._meta.get_field("bonus_points").formfield(required=False)
    bonus_multiplier = Campaign._meta.get_field("bonus_multiplier").formfield(required=False)
    bonus_days = Campaign._meta.get_field("bonus_days").formfield(required=False)
    bonus_min_amount = Campaign._meta.get_field("bonus_min_amount").formfield(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        campaign = self.instance.campaign if self.instance.campaign_id else Campaign()
        for name in BONUS_FIELDS:
            self.fields[name].initial = getattr(campaign, name)

    def bonus_offer(self) -> dict:
        offer = {name: self.cleaned_data.get(name) for name in BONUS_FIELDS}
        offer["bonus_kind"] = offer["bonus_kind"] or BonusKind.NONE
        if offer["bonus_days"] is None:
            offer["bonus_days"] = Campaign._meta.get_field("bonus_days").default
        return offer

    class Meta:
        model = Automation
        fields = [
            "name",
            "trigger",
            "message",
            "delay_hours",
            "days_before_expiry",
            "segment",
            "tier",
            "birthday_points",
            "holdout_percent",
        ]

    def clean(self):
        data = super().clean()
        trigger = data.get("trigger")
        if trigger == AutomationTrigger.POINTS_EXPIRING and not data.get("days_before_expiry"):
            self.add_error(
                "days_before_expiry", gettext("Say how many days before the expiry to send.")
            )
        if trigger == AutomationTrigger.SEGMENT_ENTRY and not data.get("segment"):
            self.add_error("segment", gettext("Choose the segment whose new members get this."))
        if all(name not in self.errors for name in BONUS_FIELDS):
            try:
                Campaign(**self.bonus_offer()).clean()
            except ValidationError as error:
                for name, messages_ in error.message_dict.items():
                    self.add_error(name if name in BONUS_FIELDS else None, messages_)
        return data


@admin.register(Automation)
class AutomationAdmin(AuditedModelAdmin, admin.ModelAdmin):
    form = AutomationForm
    list_display = ["name", "trigger", "active", "message", "sent_recently"]
    list_filter = ["trigger", "active"]
    search_fields = ["name"]
    autocomplete_fields = ["message"]
    readonly_fields = ["active_text", "progress_text", "bonus_totals_text"]
    fieldsets = [
        (None, {"fields": ["name", "trigger", "message", "active_text", "progress_text"]}),
        (
            _("When"),
            {"fields": ["delay_hours", "days_before_expiry", "segment", "tier"]},
        ),
        (_("Extras"), {"fields": ["birthday_points", "holdout_percent"]}),
        (_("Bonus offer"), {"fields": [*BONUS_FIELDS, "bonus_totals_text"]}),
    ]

    def get_queryset(self, request):
        return selectors.automations_with_sent().select_related("message", "campaign")

    @admin.display(description=_("sent in the last 30 days"), ordering="sent_recently")
    def sent_recently(self, automation: Automation) -> str:
        return points_text(automation.sent_recently)

    @admin.display(description=_("status"))
    def active_text(self, automation: Automation) -> str:
        if automation.pk is None:
            return gettext("Off: turn it on after saving.")
        return gettext("On") if automation.active else gettext("Off")

    @admin.display(description=_("messages"))
    def progress_text(self, automation: Automation) -> str:
        if automation.pk is None:
            return "-"
        progress = selectors.campaign_progress(campaign=automation.campaign)
        return gettext(
            "%(sent)s sent, %(waiting)s waiting, %(holdout)s in the holdout, %(skipped)s skipped, "
            "%(failed)s failed"
        ) % {
            "sent": points_text(progress.sent),
            "waiting": points_text(progress.waiting),
            "holdout": points_text(progress.holdout),
            "skipped": points_text(progress.skipped),
            "failed": points_text(progress.failed),
        }

    @admin.display(description=_("bonus points awarded / their cost"))
    def bonus_totals_text(self, automation: Automation) -> str:
        if automation.pk is None:
            return "-"
        return _bonus_totals_text(automation.campaign)

    def save_model(self, request, obj, form, change) -> None:
        automations.automation_save(automation=obj, bonus=form.bonus_offer(), by=request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its recipients are the record of what was sent: turn it off instead

    def get_urls(self):
        return [
            path(
                "<int:pk>/switch/<str:state>/",
                self.admin_site.admin_view(self.switch_view),
                name="campaigns_automation_switch",
            ),
        ] + super().get_urls()

    def switch_view(self, request: HttpRequest, pk: int, state: str) -> HttpResponse:
        """Turn on / off: one service, as the staff user (recorded in the campaign's history)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("campaigns.change_automation") or state not in ("on", "off"):
            raise PermissionDenied
        automation = get_object_or_404(Automation, pk=pk)
        try:
            automation = automations.automation_set_active(
                automation=automation, active=state == "on", by=request.user
            )
        except ApplicationError as error:
            messages.error(request, str(error.message))
        else:
            messages.success(
                request,
                gettext("The automation is on.")
                if automation.active
                else gettext("The automation is off."),
            )
        return HttpResponseRedirect(reverse("admin:campaigns_automation_change", args=[pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        automation = self.get_object(request, object_id)
        switch = None
        if automation is not None and request.user.has_perm("campaigns.change_automation"):
            switch = (
                {"state": "off", "label": gettext("Turn off")}
                if automation.active
                else {"state": "on", "label": gettext("Turn on")}
            )
        extra = {
            **(extra_context or {}),
            "automation_switch": switch,
            **results_context(automation.campaign if automation is not None else None),
        }
        return super().change_view(request, object_id, form_url, extra)
