"""Purchase and refund imports in the back office: upload a partner's CSV or Excel file, watch
its progress, download the refused rows as CSV. The shared import admin (members/admin.py)
starts the job with `members.imports.import_start`; `loyalty.imports` does the work."""

from __future__ import annotations

import itertools

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from members.admin import BackgroundImportAdmin

from .errors import ApplicationError
from .imports import purchase_file_check, purchase_import_errors_csv
from .models import Partner, PurchaseImport

MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # about 2 million rows of CSV
ERRORS_SHOWN = 50  # on the page; the download has them all


class PurchaseImportForm(forms.ModelForm):
    class Meta:
        model = PurchaseImport
        fields = ["partner", "file"]
        help_texts = {
            "file": _(
                "A CSV (UTF-8, separated by ',' or ';') or Excel .xlsx file with a header row: "
                "type (purchase or refund), external_id, member_number or email, amount, "
                "purchased_at, channel, store; refunds also purchase_external_id and refund_id. "
                "Uploading the same rows again records nothing twice."
            )
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        partner = self.fields.get("partner")
        if isinstance(partner, forms.ModelChoiceField):  # the add form; a job is read-only
            partner.queryset = Partner.objects.filter(is_active=True)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".xlsx")):
            raise forms.ValidationError(_("Upload a .csv or .xlsx file."))
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 200 MB."))
        upload.seek(0)
        try:
            purchase_file_check(handle=upload, name=upload.name)
        except ApplicationError as error:
            raise forms.ValidationError(str(error.message)) from error
        finally:
            upload.seek(0)
        return upload


@admin.register(PurchaseImport)
class PurchaseImportAdmin(BackgroundImportAdmin):
    form = PurchaseImportForm
    input_fields = ["partner", "file"]
    error_value_key = "external_id"
    error_value_label = _("purchase or refund id")
    list_display = [
        "__str__",
        "partner",
        "status",
        "progress",
        "created_rows",
        "replayed_rows",
        "error_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "partner"]
    list_select_related = ["partner", "created_by"]
    readonly_fields = [
        "partner",
        "status",
        "progress",
        "total_rows",
        "processed_rows",
        "created_rows",
        "replayed_rows",
        "error_rows",
        "created_by",
        "created_at",
        "finished_at",
        "error_report",
    ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []  # the add form sets the partner

    @admin.display(description=_("refused"), ordering="error_rows")
    def error_count(self, job: PurchaseImport) -> int:
        return job.error_rows

    @admin.display(description=_("row errors"))
    def error_report(self, job: PurchaseImport):
        if not job.errors:
            return _("None")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (error["row"], error.get("external_id", ""), error.get("code", ""), error["error"])
                for error in job.errors[:ERRORS_SHOWN]
            ),
        )
        download = reverse("admin:loyalty_purchaseimport_errors", args=[job.pk])
        return format_html(
            '<p><a href="{}" download>{}</a> ({})</p>'
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            download,
            _("Download the refused rows (CSV)"),
            _("%(shown)d of %(count)d shown")
            % {"shown": min(len(job.errors), ERRORS_SHOWN), "count": job.error_rows},
            _("row"),
            self.error_value_label,
            _("code"),
            _("error"),
            rows,
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/errors.csv",
                self.admin_site.admin_view(self.errors_csv_view),
                name="loyalty_purchaseimport_errors",
            ),
            *super().get_urls(),
        ]

    def errors_csv_view(self, request: HttpRequest, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(PurchaseImport, pk=pk)
        lines = itertools.chain(["\ufeff"], purchase_import_errors_csv(job=job))  # BOM: Excel
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="purchase-import-{pk}-errors.csv"'
        return response
