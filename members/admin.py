"""The members part of the back office: members, logins, invitations, terms and consent.

Points, tiers and the ledger belong to `loyalty`, which `members` may not import; loyalty and
segmentation add their columns, filter, pages and panels to MemberAdmin through
`loyalty.admin_site.admin_extensions` in their `AppConfig.ready()`.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from loyalty.admin_paginator import EstimatedCountPaginator
from loyalty.admin_readonly import ReadOnlyAdmin
from loyalty.admin_site import ExtensibleModelAdmin
from loyalty.errors import ApplicationError

from . import services
from .imports import import_start
from .models import (
    ConsentChannel,
    ConsentRecord,
    FaqItem,
    Invitation,
    InvitationImport,
    InvitationOptOut,
    JobStatus,
    Language,
    Member,
    PrivacyStatement,
    TermsVersion,
    User,
)
from .selectors import consent_states, member_search, members_exactly


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    search_fields = ["email", "first_name", "last_name"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "password1", "password2", "is_staff", "groups"),
            },
        ),
    )


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # else Django counts the inline as editable and offers Save


class ConsentRecordInline(ReadOnlyInline):
    model = ConsentRecord
    fields = ["recorded_at", "channel", "granted", "source", "terms_version"]
    readonly_fields = fields
    ordering = ["-recorded_at", "-pk"]
    verbose_name_plural = _("consent history")


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=services.EMAIL_MAX_LENGTH)
    first_name = forms.CharField(label=_("First name"), required=False, max_length=150)
    last_name = forms.CharField(label=_("Last name"), required=False, max_length=150)
    language = forms.ChoiceField(label=_("Language"), choices=Language.choices)


class MemberAdminForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = ["status", "email", "first_name", "last_name", "birth_date", "language"]

    def clean_birth_date(self):
        birth_date = self.cleaned_data.get("birth_date")
        try:
            services.birth_date_check(birth_date)
        except ApplicationError as error:
            raise forms.ValidationError(str(error.message)) from error
        return birth_date


def search_by_member(queryset, search_term: str, member_path: str):
    """Rows of the member whose number or e-mail address (any case) is the term, by indexed
    equality: a `LIKE '%…%'` over a joined member table scanned millions of rows. The ids are
    looked up first: as a subquery OR-ed with other terms, PostgreSQL scanned every row."""
    if not search_term.strip():
        return queryset, False
    member_ids = list(members_exactly(search_term).values_list("pk", flat=True))
    return queryset.filter(**{f"{member_path}__in": member_ids}), False


@admin.register(Member)
class MemberAdmin(ExtensibleModelAdmin):
    form = MemberAdminForm
    # Language is a filter, not a column: loyalty adds points and tier, and all fit 1366 px.
    list_display = ["member_number", "full_name", "email", "status", "enrolled_at"]
    list_display_links = ["member_number", "full_name"]
    search_fields = ["=member_number", "email", "first_name", "last_name"]
    list_filter = ["status", "enrolment_source", "language", "enrolled_at"]
    list_select_related: list[str] = []
    readonly_fields = [
        "member_number",
        "created_at",
        "enrolled_at",
        "enrolment_source",
        "user",
        "current_consents",
    ]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "member_number",
                    "status",
                    "email",
                    "first_name",
                    "last_name",
                    "birth_date",
                    "language",
                )
            },
        ),
        (_("Enrolment"), {"fields": ("enrolment_source", "enrolled_at", "created_at", "user")}),
        (_("Consent"), {"fields": ("current_consents",)}),
    )
    inlines: list = [ConsentRecordInline]
    actions = [
        "resend_confirmation",
        "record_profiling_objection",
        "withdraw_profiling_objection",
        "erase_selected",
    ]
    # No date hierarchy (its years and months scanned every member) and estimated counts:
    # a list of a million members answers in 300 ms (issue 16). "Enrolled at" filters by date.
    show_full_result_count = False  # counting 1M members on every page costs more than it helps
    paginator = EstimatedCountPaginator
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice over millions of rows
    search_help_text = _(
        "A member number or a full e-mail address finds that member; other text finds members "
        "whose name or e-mail address contains every word."
    )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # members are erased (GDPR), never deleted: the ledger keeps its owner

    def get_search_results(self, request, queryset, search_term):
        return member_search(queryset, search_term), False

    @admin.display(description=_("name"), ordering="last_name")
    def full_name(self, member: Member) -> str:
        return member.full_name

    @admin.display(description=_("current choices"))
    def current_consents(self, member: Member) -> str:
        """Each channel's state (the newest record, or the channel's default without one)."""
        if member.pk is None:
            return "—"
        states = consent_states(member=member)
        rows = []
        for channel in ConsentChannel:
            if channel == ConsentChannel.PROFILING:
                state = _("allowed") if states[channel] else _("objected")
            else:
                state = _("granted") if states[channel] else _("not granted")
            rows.append((channel.label, state))
        return format_html(
            '<table class="consent-states">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    @admin.action(
        description=_("Record an objection to profiling (request received elsewhere)"),
        permissions=["change"],
    )
    def record_profiling_objection(self, request: HttpRequest, queryset) -> None:
        self._set_profiling(request, queryset, granted=False)

    @admin.action(description=_("Withdraw the objection to profiling"), permissions=["change"])
    def withdraw_profiling_objection(self, request: HttpRequest, queryset) -> None:
        self._set_profiling(request, queryset, granted=True)

    def _set_profiling(self, request: HttpRequest, queryset, *, granted: bool) -> None:
        """One record per member whose state changes, with the staff user as the source."""
        source = f"admin:{request.user.pk}"
        with transaction.atomic():
            changed = sum(
                services.consent_change(
                    member=member,
                    granted=granted,
                    source=source,
                    channel=ConsentChannel.PROFILING,
                )
                for member in queryset.order_by("pk")
            )
        unchanged = queryset.count() - changed
        if granted:
            text = _("Objection to profiling withdrawn for %(count)d member(s).")
        else:
            text = _("Objection to profiling recorded for %(count)d member(s).")
        self.message_user(request, text % {"count": changed}, messages.SUCCESS)
        if unchanged:
            self.message_user(
                request,
                _("%(count)d member(s) already had this choice; nothing recorded for them.")
                % {"count": unchanged},
                messages.WARNING,
            )

    @admin.action(description=_("Resend the confirmation e-mail"), permissions=["change"])
    def resend_confirmation(self, request: HttpRequest, queryset) -> None:
        sent, refused = 0, []
        for member in queryset:
            try:
                with transaction.atomic():
                    services.member_confirmation_resend(member=member)
                sent += 1
            except ApplicationError as error:
                refused.append(f"{member.member_number}: {error.message}")
        if sent:
            self.message_user(
                request,
                _("%(count)d confirmation e-mail(s) sent.") % {"count": sent},
                messages.SUCCESS,
            )
        for line in refused:
            self.message_user(request, line, messages.ERROR)

    @admin.action(
        description=_("Erase personal data (GDPR request received elsewhere)"),
        permissions=["change"],
    )
    def erase_selected(self, request: HttpRequest, queryset):
        """Asks for confirmation first; the POST with `confirm` erases."""
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Erase personal data"),
                "members": queryset,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return render(request, "admin/members/member/erase_confirm.html", context)
        erased = 0
        for member in queryset:
            try:
                services.member_erase(member=member, by=request.user)
                erased += 1
            except ApplicationError as error:
                self.message_user(
                    request, f"{member.member_number}: {error.message}", messages.ERROR
                )
        if erased:
            self.message_user(
                request,
                _("%(count)d member(s) erased; their points and purchases stay in the accounts.")
                % {"count": erased},
                messages.SUCCESS,
            )
        return None

    def get_urls(self):
        custom = [
            path(
                "invite/",
                self.admin_site.admin_view(self.invite_view),
                name="members_member_invite",
            ),
            path(
                "<int:pk>/export/",
                self.admin_site.admin_view(self.export_view),
                name="members_member_export",
            ),
        ]
        return custom + super().get_urls()

    def export_view(self, request: HttpRequest, pk: int):
        """The member's GDPR data export, for a request received by other means."""
        from django.http import HttpResponse
        from django.shortcuts import get_object_or_404

        if not self.has_change_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=pk)
        response = HttpResponse(
            services.member_data_export(member=member, by=request.user),
            content_type="application/zip",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="personal-data-{member.member_number}.zip"'
        )
        return response

    def invite_view(self, request: HttpRequest):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = InviteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                invitation = services.member_invite(invited_by=request.user, **form.cleaned_data)
            except ApplicationError as error:
                form.add_error(
                    error.field if error.field in form.fields else None, str(error.message)
                )
            else:
                self.message_user(
                    request,
                    _("Invitation sent to %(email)s.") % {"email": invitation.member.email},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:members_member_change", args=[invitation.member.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Invite a customer"),
            "opts": self.model._meta,
        }
        return render(request, "admin/members/member/invite.html", context)


@admin.register(TermsVersion)
class TermsVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "published_at"]
    search_fields = ["version"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # acceptances and consents refer to the versions


@admin.register(FaqItem)
class FaqItemAdmin(admin.ModelAdmin):
    list_display = ["question_nl", "question_en", "position", "is_published"]
    list_editable = ["position", "is_published"]
    search_fields = ["question_nl", "question_en", "answer_nl", "answer_en"]


@admin.register(PrivacyStatement)
class PrivacyStatementAdmin(admin.ModelAdmin):
    list_display = ["version", "published_at"]


class ConsentSourceFilter(admin.SimpleListFilter):
    """Where a change came from, by the source's kind: Django's filter on the field listed
    every distinct source (a DISTINCT over a million records per view, and one entry per
    staff user and partner)."""

    title = _("source")
    parameter_name = "source_kind"

    def lookups(self, request, model_admin):
        return [
            ("enrolment", _("Enrolment")),
            ("portal", _("Portal")),
            ("admin", _("Back office")),
            ("api", _("Partner API")),
            ("unsubscribe", _("Unsubscribe link")),
            ("erasure", _("Erasure")),
        ]

    def queryset(self, request, queryset):
        if self.value() in dict(self.lookup_choices):
            return queryset.filter(source__startswith=self.value())
        return queryset


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["member", "channel", "granted", "source", "recorded_at", "terms_version"]
    list_filter = ["channel", "granted", ConsentSourceFilter]
    search_fields = ["member__email", "=member__member_number"]
    list_select_related = ["member", "terms_version"]
    paginator = EstimatedCountPaginator
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice over millions of rows
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        return search_by_member(queryset, search_term, "member")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["member", "invited_by", "created_at", "sent_at", "accepted_at"]
    list_filter = [("accepted_at", admin.EmptyFieldListFilter), "sent_at"]
    search_fields = ["member__email", "=member__member_number"]
    list_select_related = ["member", "invited_by"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(InvitationOptOut)
class InvitationOptOutAdmin(ReadOnlyAdmin):
    """Addresses that stopped invitations with the link in one; only that person undoes it,
    by joining."""

    list_display = ["email", "created_at"]
    search_fields = ["email"]
    date_hierarchy = "created_at"


def clean_csv_upload(upload):
    if not upload.name.lower().endswith(".csv"):
        raise forms.ValidationError(_("Upload a .csv file."))
    if upload.size > 20 * 1024 * 1024:
        raise forms.ValidationError(_("The file is larger than 20 MB."))
    return upload


class InvitationImportForm(forms.ModelForm):
    class Meta:
        model = InvitationImport
        fields = ["file"]
        help_texts = {
            "file": _(
                "A CSV with a header row: email, first_name, last_name, "
                "language (nl or en). One invitation per row."
            )
        }

    def clean_file(self):
        return clean_csv_upload(self.cleaned_data["file"])


class BackgroundImportAdmin(admin.ModelAdmin):
    """Upload a CSV; a Celery task imports it; the page shows progress and row errors.

    Subclasses set `form`, `input_fields`, and the key and label of the value each row error
    names; the model's `import_task` runs the import (`members.imports.import_start`)."""

    input_fields = ["file"]
    error_value_key = "email"
    error_value_label = _("e-mail")
    list_display = [
        "__str__",
        "status",
        "progress",
        "created_rows",
        "error_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]
    readonly_fields = [
        "status",
        "progress",
        "total_rows",
        "processed_rows",
        "created_rows",
        "created_by",
        "created_at",
        "finished_at",
        "error_report",
    ]
    change_form_template = "admin/members/invitationimport/change_form.html"

    def get_fields(self, request, obj=None):
        return self.input_fields if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or super().has_change_permission(request, obj)

    @admin.display(description=_("progress"))
    def progress(self, job) -> str:
        return format_html(
            '<progress max="100" value="{0}" aria-label="{1}"></progress> {0}%',
            job.progress_percent,
            _("progress"),
        )

    @admin.display(description=_("errors"))
    def error_count(self, job) -> int:
        return len(job.errors)

    @admin.display(description=_("row errors"))
    def error_report(self, job):
        if not job.errors:
            return _("None")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((e["row"], e.get(self.error_value_key, ""), e["error"]) for e in job.errors),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            _("row"),
            self.error_value_label,
            _("error"),
            rows,
        )

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        import_start(job=obj, by=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request, _("The import has started; this page shows its progress."), messages.SUCCESS
        )
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra = {
            "auto_refresh": job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


@admin.register(InvitationImport)
class InvitationImportAdmin(BackgroundImportAdmin):
    form = InvitationImportForm


# --- login throttling (django-axes) ------------------------------------------------------
# Registered here rather than by axes (AXES_ENABLE_ADMIN = False) to add the unlock action.
from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin  # noqa: E402
from axes.admin import AccessFailureLogAdmin as AxesAccessFailureLogAdmin  # noqa: E402
from axes.models import AccessAttempt, AccessFailureLog  # noqa: E402

from . import throttling  # noqa: E402


@admin.register(AccessAttempt)
class AccessAttemptAdmin(AxesAccessAttemptAdmin):
    actions = ["unlock"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "unlock" says what removing them means
        return actions

    @admin.action(description=_("Unlock the selected logins"), permissions=["delete"])
    def unlock(self, request: HttpRequest, queryset) -> None:
        """Each selected e-mail address may log in again at once, and the selected failures no
        longer count against their client address. Other failures from that address still do:
        helping one member must not unlock an attacker's address for every account."""
        usernames = sorted({attempt.username for attempt in queryset if attempt.username})
        attempt_ids = list(queryset.values_list("pk", flat=True))
        throttling.login_unlock(usernames=usernames, attempt_ids=attempt_ids)
        self.message_user(
            request,
            _("Unlocked %(count)d login(s); the selected failed attempts no longer count.")
            % {"count": len(usernames)},
            messages.SUCCESS,
        )


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(AxesAccessFailureLogAdmin):
    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a log: read it, never edit it
