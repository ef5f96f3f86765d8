"""Segmentation in the back office: settings, runs with "recalculate now", rule-based segments
with a builder and a live count, the dashboard, CSV exports and the member page's scores."""

from __future__ import annotations

import csv
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from loyalty.admin_singleton import SingletonAdmin
from loyalty.audit.admin import AuditedModelAdmin
from loyalty.audit.models import AuditAction
from loyalty.audit.services import audit_record
from loyalty.formats import money_text
from loyalty.outbox.services import outbox_enqueue
from members.models import Member

from . import display, selectors, services
from .errors import RecalculationRunning, RuleInvalid
from .models import (
    BAND_ERRORS,
    Quadrant,
    RuleSegment,
    RunStatus,
    Segment,
    SegmentationRun,
    SegmentationSettings,
)
from .rules import FIELDS, rule_members, validate_rule

# The stages a run times (services._execute), as the runs page names them.
STAGE_LABELS = {
    "aggregate": _("Reading purchases and members"),
    "score": _("Scores, CLV and matrix"),
    "rule_segments": _("Rule-based segments"),
    "write_scores": _("Writing the scores"),
    "write_rule_segments": _("Writing the rule-based segments"),
    "swap": _("Making the run current"),
    "facts": _("Quantiles, CLV fit and medians of all members"),
    "ranges": _("Member ranges (scores, CLV, rule segments, writing), summed"),
}


class FrequencyBandsField(forms.CharField):
    """Purchase-count bands typed as "1, 2, 3, 5, 10" (the lowest count of each score)."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(count) for count in value)
        return value

    def to_python(self, value):
        text = super().to_python(value).replace(";", ",")
        try:
            return [int(part) for part in text.split(",") if part.strip()]
        except ValueError as error:
            raise forms.ValidationError(BAND_ERRORS["numbers"], code="bands_numbers") from error


class SegmentationSettingsForm(forms.ModelForm):
    frequency_bands = FrequencyBandsField(
        label=_("frequency bands"),
        help_text=SegmentationSettings._meta.get_field("frequency_bands").help_text,
    )

    class Meta:
        model = SegmentationSettings
        # The admin's fieldsets name every field shown; these are the ones set up here.
        fields = ["frequency_scoring", "frequency_bands"]
        widgets = {"frequency_scoring": forms.RadioSelect}


@admin.register(SegmentationSettings)
class SegmentationSettingsAdmin(AuditedModelAdmin, SingletonAdmin):
    form = SegmentationSettingsForm
    fieldsets = (
        (
            _("RFM"),
            {"fields": ("window_days", "score_scale", "frequency_scoring", "frequency_bands")},
        ),
        (
            _("Customer lifetime value"),
            {
                "fields": (
                    "clv_purchase_model",
                    "clv_horizon_months",
                    "monthly_discount_rate",
                    "margin",
                )
            },
        ),
        (
            _("Loyalty x profitability matrix"),
            {"fields": ("loyalty_threshold", "profitability_threshold")},
        ),
        (_("Snapshots"), {"fields": ("retention_runs",)}),
        (_("Scale"), {"fields": ("range_size", "clv_sample_size")}),
    )


# --- runs ----------------------------------------------------------------------------------


@admin.register(SegmentationRun)
class SegmentationRunAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "status",
        "progress_bar",
        "stage",
        "duration",
        "member_count",
        "is_current",
        "triggered_by",
    ]
    list_filter = ["status", "is_current"]
    list_select_related = ["triggered_by"]
    readonly_fields = [
        "started_at",
        "finished_at",
        "duration",
        "status",
        "progress_bar",
        "stage",
        "is_current",
        "member_count",
        "triggered_by",
        "count_table",
        "scoring_table",
        "fitted_parameters",
        "threshold_table",
        "timing_table",
        "error",
    ]
    fields = readonly_fields
    change_list_template = "admin/segmentation/segmentationrun/change_list.html"
    change_form_template = "admin/segmentation/segmentationrun/change_form.html"

    def has_add_permission(self, request) -> bool:
        return False  # a run is started with "Recalculate now", never typed in

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the retention setting prunes old snapshots

    @admin.display(description=_("progress"))
    def progress_bar(self, run: SegmentationRun) -> str:
        return format_html(
            '<progress max="100" value="{0}" aria-label="{1}"></progress> {0}%',
            run.progress,
            _("progress"),
        )

    @admin.display(description=_("duration"))
    def duration(self, run: SegmentationRun) -> str:
        seconds = run.duration_seconds
        if seconds is None:
            return "—"
        return gettext("%(seconds)s s") % {"seconds": display.number(seconds, 1)}

    @admin.display(description=_("time per stage"))
    def timing_table(self, run: SegmentationRun) -> str:
        if not run.timings:
            return "—"
        rows = [
            display.Row(
                str(STAGE_LABELS.get(stage, stage)),
                gettext("%(seconds)s s") % {"seconds": display.number(seconds, 2)},
            )
            for stage, seconds in run.timings.items()
        ]
        return _parameter_table(rows, "run-timings")

    @admin.display(description=_("counts"))
    def count_table(self, run: SegmentationRun) -> str:
        return _parameter_table(display.count_rows(run.parameters), "run-counts")

    @admin.display(description=_("RFM scoring"))
    def scoring_table(self, run: SegmentationRun) -> str:
        if not run.parameters:
            return "—"
        return _parameter_table(display.scoring_rows(run.parameters), "run-scoring")

    @admin.display(description=_("fitted CLV models"))
    def fitted_parameters(self, run: SegmentationRun) -> str:
        skipped = display.clv_skipped_text(run.parameters)
        if skipped:
            return skipped
        models = display.clv_model_rows(run.parameters)
        if not models:
            return "—"
        return format_html_join(
            "",
            '<table class="run-parameters run-clv-model"><caption>{}</caption>{}</table>',
            ((label, _parameter_rows(rows)) for label, rows in models),
        )

    @admin.display(description=_("matrix thresholds"))
    def threshold_table(self, run: SegmentationRun) -> str:
        return _parameter_table(
            display.threshold_rows(run.parameters, money_text), "run-thresholds"
        )

    def progress_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """The run's status, stage and progress for the run page's polling, in the viewer's
        language (the stage is stored as its key)."""
        run = self.get_object(request, object_id)
        if run is None or not self.has_view_permission(request, run):
            return JsonResponse(
                {"code": "run_not_found", "message": gettext("No such run.")}, status=404
            )
        return JsonResponse(
            {
                "id": run.pk,
                "status": run.status,
                "status_name": run.get_status_display(),
                "stage": run.stage,
                "stage_name": run.get_stage_display(),
                "progress": run.progress,
            }
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "recalculate/",
                view(self.recalculate_view),
                name="segmentation_segmentationrun_recalculate",
            ),
            path("dashboard/", view(dashboard_view), name="segmentation_dashboard"),
            path("export/", view(export_view), name="segmentation_export"),
            path(
                "<path:object_id>/progress/",
                view(self.progress_view),
                name="segmentation_segmentationrun_progress",
            ),
            path(
                "<path:object_id>/resume/",
                view(self.resume_view),
                name="segmentation_segmentationrun_resume",
            ),
        ] + super().get_urls()

    def recalculate_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:segmentation_segmentationrun_changelist"))
        if not request.user.has_perm("segmentation.add_segmentationrun"):
            raise PermissionDenied
        try:
            run = services.run_request(triggered_by=request.user)
        except RecalculationRunning as error:
            self.message_user(request, str(error.message), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:segmentation_segmentationrun_changelist"))
        self.message_user(
            request,
            _("The recalculation has started; this page shows its progress."),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(
            reverse("admin:segmentation_segmentationrun_change", args=[run.pk])
        )

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Hand the ranges not done of a run left running to the workers again."""
        run = self.get_object(request, object_id)
        if run is None:
            return HttpResponseRedirect(reverse("admin:segmentation_segmentationrun_changelist"))
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse("admin:segmentation_segmentationrun_change", args=[run.pk])
            )
        if not request.user.has_perm("segmentation.add_segmentationrun"):
            raise PermissionDenied
        if run.status == RunStatus.RUNNING:
            outbox_enqueue("segmentation.tasks.resume_segments", run.pk)
            self.message_user(
                request, _("The run carries on with the ranges not done."), messages.SUCCESS
            )
        return HttpResponseRedirect(
            reverse("admin:segmentation_segmentationrun_change", args=[run.pk])
        )

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_recalculate": request.user.has_perm("segmentation.add_segmentationrun"),
            "auto_refresh": SegmentationRun.objects.filter(status=RunStatus.RUNNING).exists(),
        }
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra = {
            "auto_refresh": run is not None and run.status == RunStatus.RUNNING,
            "clv_fit_warnings": display.clv_fit_warnings(run.parameters) if run else [],
            "can_resume": run is not None
            and run.status == RunStatus.RUNNING
            and bool(run.error)
            and request.user.has_perm("segmentation.add_segmentationrun"),
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


def _parameter_rows(rows: list[display.Row]) -> str:
    return format_html_join(
        "", '<tr><th scope="row">{}</th><td>{}</td></tr>', ((row.label, row.value) for row in rows)
    )


def _parameter_table(rows: list[display.Row], css_id: str) -> str:
    if not rows:
        return "—"
    return format_html(
        '<table class="run-parameters" id="{}">{}</table>', css_id, _parameter_rows(rows)
    )


# --- rule-based segments -------------------------------------------------------------------


class RuleField(forms.JSONField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault(
            "widget", forms.Textarea(attrs={"rows": 8, "cols": 80, "class": "rule-json"})
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, dict | list):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return super().prepare_value(value)


class RuleSegmentForm(forms.ModelForm):
    rule = RuleField(
        label=_("Rule"),
        help_text=_(
            "Build the rule with the conditions above, or edit it here for nested groups "
            "(see docs/rfm-segments.md)."
        ),
    )

    class Meta:
        model = RuleSegment
        fields = ["name", "description", "is_active", "rule"]

    def clean_rule(self):
        rule = self.cleaned_data["rule"]
        try:
            validate_rule(rule)
        except RuleInvalid as error:
            raise forms.ValidationError(str(error.message), code=error.code) from error
        return rule


def rule_builder_spec() -> dict:
    """What the rule builder offers: fields with their label, kind, operators and choices."""
    labels = {
        **{segment.value: str(segment.label) for segment in Segment},
        **{quadrant.value: str(quadrant.label) for quadrant in Quadrant},
    }
    return {
        "fields": [
            {
                "name": name,
                "label": str(spec.label),
                "kind": spec.kind,
                "ops": list(spec.ops),
                "needs_days": spec.needs_days,
                "choices": [[value, labels.get(value, value)] for value in spec.choices()]
                if spec.choices
                else [],
            }
            for name, spec in FIELDS.items()
        ],
        "ops": {
            "gte": gettext("at least"),
            "lte": gettext("at most"),
            "eq": gettext("equals"),
            "between": gettext("between"),
            "in": gettext("is one of"),
            "not_in": gettext("is none of"),
            "before": gettext("before"),
            "after": gettext("after"),
            "is": gettext("is"),
        },
        "text": {
            "all": gettext("all conditions hold (AND)"),
            "any": gettext("at least one holds (OR)"),
            "add": gettext("Add a condition"),
            "remove": gettext("Remove"),
            "days": gettext("over the last N days"),
            "yes": gettext("yes"),
            "no": gettext("no"),
            "nested": gettext("This rule has nested groups; edit it as JSON below."),
            "count": gettext("Count members"),
            "members": gettext("%(count)s members match (current run)."),
        },
    }


@admin.register(RuleSegment)
class RuleSegmentAdmin(AuditedModelAdmin, admin.ModelAdmin):
    form = RuleSegmentForm
    list_display = ["name", "is_active", "current_members", "updated_at", "created_by"]
    list_filter = ["is_active"]
    search_fields = ["name", "description"]
    readonly_fields = ["current_members", "created_by", "created_at", "updated_at"]
    change_form_template = "admin/segmentation/rulesegment/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def changelist_view(self, request, extra_context=None):
        self._counts = selectors.rule_segment_counts()
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("members (current run)"))
    def current_members(self, segment: RuleSegment) -> int | str:
        counts = getattr(self, "_counts", None)
        if counts is None:
            counts = selectors.rule_segment_counts()
        return counts.get(segment.pk, "—")

    def save_model(self, request, obj, form, change) -> None:
        services.rule_segment_save(segment=obj, rule=form.cleaned_data["rule"], user=request.user)

    def get_urls(self):
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="segmentation_rulesegment_preview",
            )
        ] + super().get_urls()

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """How many members a rule selects now (for the live count); changes nothing."""
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        try:
            rule = json.loads(request.POST.get("rule") or "null")
        except json.JSONDecodeError as error:
            return JsonResponse(
                {"code": "invalid_json", "message": gettext("Not valid JSON: %s") % error.msg},
                status=400,
            )
        try:
            run = selectors.current_run()
            count = rule_members(rule=rule, run_id=run.pk if run else None).count()
        except RuleInvalid as error:
            return JsonResponse(error.as_dict(), status=400)
        return JsonResponse({"count": count, "run": run.pk if run else None})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["rule_builder"] = rule_builder_spec()
        context["preview_url"] = reverse("admin:segmentation_rulesegment_preview")
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- dashboard and export ------------------------------------------------------------------


def _run_from(request: HttpRequest, name: str, default: SegmentationRun | None):
    value = request.GET.get(name)
    if value and value.isdigit():
        return selectors.finished_runs().filter(pk=int(value)).first() or default
    return default


def dashboard_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("segmentation.view_memberscore"):
        raise PermissionDenied
    runs = list(selectors.finished_runs()[:50])
    current = selectors.current_run()
    run = _run_from(request, "run", current)
    context = {
        **admin.site.each_context(request),
        "title": _("Segments and customer value"),
        "opts": SegmentationRun._meta,
        "runs": runs,
        "run": run,
        "can_export": request.user.has_perm("segmentation.export_memberscore"),
    }
    if run is not None:
        earlier = [other for other in runs if other.started_at < run.started_at]
        before = _run_from(request, "before", earlier[0] if earlier else None)
        segments = selectors.segment_summary(run=run)
        quadrants = selectors.quadrant_summary(run=run)
        distributions = selectors.value_distributions(run=run)
        context.update(
            segments=segments,
            heatmap=selectors.rf_heatmap(run=run),
            frequency_bands=(
                display.frequency_bands_text(run.parameters["frequency_bands"])
                if run.parameters.get("frequency_bands")
                else None
            ),
            quadrants=quadrants,
            before=before,
            movement=selectors.transitions(before=before, after=run) if before else None,
            charts={
                "segments": [row.label for row in segments],
                "members": [row.members for row in segments],
                "revenue_share": [round(row.revenue_share * 100, 1) for row in segments],
                "quadrants": [row.label for row in quadrants],
                "quadrant_members": [row.members for row in quadrants],
                **distributions,
            },
        )
    return render(request, "admin/segmentation/dashboard.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_view(request: HttpRequest) -> HttpResponse:
    """A segment's members as CSV: ?segment=, ?quadrant= or ?rule_segment=, of ?run= (current)."""
    if not request.user.has_perm("segmentation.export_memberscore"):
        raise PermissionDenied
    run = _run_from(request, "run", selectors.current_run())
    segment = request.GET.get("segment") or None
    quadrant = request.GET.get("quadrant") or None
    rule_segment = None
    if request.GET.get("rule_segment", "").isdigit():
        rule_segment = get_object_or_404(RuleSegment, pk=int(request.GET["rule_segment"]))
    if (
        run is None
        or (segment and segment not in Segment.values)
        or (quadrant and quadrant not in Quadrant.values)
        or not (segment or quadrant or rule_segment)
    ):
        messages.error(request, _("Choose a segment of a finished run to export."))
        return HttpResponseRedirect(reverse("admin:segmentation_dashboard"))
    audit_record(  # personal data (names, addresses) leaves the system: who, when, which
        actor=request.user,
        action=AuditAction.SEGMENT_EXPORTED,
        obj=rule_segment or run,
        description=gettext_noop("Members of %(segment)s exported (run %(run)s)"),
        params={
            "segment": rule_segment.name if rule_segment else segment or quadrant,
            "run": run.pk,
        },
    )
    writer = csv.writer(_Echo(), delimiter=";")
    # Headers, names and numbers in the exporting user's language; the keys in their own
    # columns at the end for machines (display.export_lines).
    header = display.export_header()
    rows = display.export_lines(
        selectors.export_rows(
            run=run, segment=segment, quadrant=quadrant, rule_segment=rule_segment
        )
    )
    name = slugify(segment or quadrant or (rule_segment.name if rule_segment else "")) or "segment"
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _with_header(header, rows)),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.localtime(run.started_at).strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def _with_header(header, rows):
    yield header
    yield from rows


# --- the member page (registered in SegmentationConfig.ready) -----------------------------


def member_scores_context(request: HttpRequest, member: Member) -> dict:
    if not request.user.has_perm("segmentation.view_memberscore"):
        return {}
    return {
        "segment_scores": selectors.member_score_history(member=member),
        "segment_memberships": selectors.member_rule_segments(member=member),
    }
