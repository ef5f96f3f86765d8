"""Rewards in the back office: the catalogue, code pools (generate, import), redemptions with
cancel and fulfil, the voucher check at a counter, and reward performance per partner."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loyalty.audit.admin import AuditedModelAdmin
from loyalty.errors import ApplicationError
from members.admin import BackgroundImportAdmin, clean_csv_upload

from . import codes, selectors, services
from .models import CodeStatus, Redemption, RedemptionStatus, Reward, VoucherCode, VoucherImport


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(label=_("Number of codes"), min_value=1, max_value=100_000)


@admin.register(Reward)
class RewardAdmin(AuditedModelAdmin, admin.ModelAdmin):
    list_display = [
        "name_nl",
        "kind",
        "points_cost",
        "stock",
        "codes_available",
        "redeemed",
        "partner",
        "is_active",
        "valid_until",
    ]
    list_filter = ["is_active", "kind", "partner", "minimum_tier"]
    search_fields = ["name_nl", "name_en", "description_nl", "description_en"]
    list_select_related = ["partner"]
    filter_horizontal = ["segments"]
    fieldsets = (
        (None, {"fields": ("name_nl", "name_en", "description_nl", "description_en", "image")}),
        (_("Kind and cost"), {"fields": ("kind", "partner", "points_cost", "cost_eur")}),
        (
            _("Availability"),
            {
                "fields": (
                    "is_active",
                    "stock",
                    "valid_from",
                    "valid_until",
                    "limit_per_member",
                    "voucher_valid_days",
                )
            },
        ),
        (_("Who may redeem"), {"fields": ("minimum_tier", "segments")}),
    )
    change_form_template = "admin/rewards/reward/change_form.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                available_codes=Count(
                    "codes", filter=Q(codes__status=CodeStatus.AVAILABLE), distinct=True
                ),
                redemption_count=Count(
                    "redemptions",
                    filter=~Q(redemptions__status=RedemptionStatus.CANCELLED),
                    distinct=True,
                ),
            )
        )

    @admin.display(description=_("codes available"), ordering="available_codes")
    def codes_available(self, reward: Reward) -> int | str:
        return reward.available_codes if reward.kind == "voucher" else "—"

    @admin.display(description=_("redeemed"), ordering="redemption_count")
    def redeemed(self, reward: Reward) -> int:
        return reward.redemption_count

    def get_urls(self):
        return [
            path(
                "<int:pk>/generate-codes/",
                self.admin_site.admin_view(self.generate_codes_view),
                name="rewards_reward_generate_codes",
            )
        ] + super().get_urls()

    def generate_codes_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        reward = get_object_or_404(Reward, pk=pk)
        if not self.has_change_permission(request, reward):
            raise PermissionDenied
        form = GenerateCodesForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                created = services.codes_generate(reward=reward, count=form.cleaned_data["count"])
            except ApplicationError as error:
                form.add_error("count", str(error.message))
            else:
                self.message_user(
                    request,
                    gettext("%(count)d codes added.") % {"count": created},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:rewards_reward_change", args=[pk]))
        return render(
            request,
            "admin/rewards/generate_codes.html",
            _context(
                request,
                gettext("Generate codes for %(reward)s") % {"reward": reward.name_nl},
                form=form,
                reward=reward,
                opts=Reward._meta,
            ),
        )


@admin.register(VoucherCode)
class VoucherCodeAdmin(admin.ModelAdmin):
    list_display = ["shown_code", "reward", "status", "created_at", "used_at"]
    list_filter = ["status", "reward"]
    search_fields = ["=code"]
    list_select_related = ["reward"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("code"), ordering="code")
    def shown_code(self, voucher: VoucherCode) -> str:
        return codes.display(voucher.code) if codes.is_well_formed(voucher.code) else voucher.code

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, codes.normalise(search_term))


class VoucherImportForm(forms.ModelForm):
    class Meta:
        model = VoucherImport
        fields = ["reward", "file"]
        help_texts = {"file": _("A CSV with a header row containing 'code'. One code per row.")}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "reward" in self.fields:  # the add form; a finished job is read-only
            self.fields["reward"].queryset = Reward.objects.filter(kind="voucher")

    def clean_file(self):
        return clean_csv_upload(self.cleaned_data["file"])


@admin.register(VoucherImport)
class VoucherImportAdmin(BackgroundImportAdmin):
    form = VoucherImportForm
    input_fields = ["reward", "file"]
    error_value_key = "code"
    error_value_label = _("code")
    list_display = ["__str__", "reward", *BackgroundImportAdmin.list_display[1:]]


class VoucherCheckForm(forms.Form):
    code = forms.CharField(label=_("Voucher code"), max_length=60)


@admin.register(Redemption)
class RedemptionAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "member",
        "reward",
        "status",
        "points",
        "shown_code",
        "valid_until",
    ]
    list_filter = ["status", "reward__kind", "reward__partner", "reward"]
    search_fields = ["=member__member_number", "member__email", "=code"]
    list_select_related = ["member", "reward"]
    readonly_fields = [
        "member",
        "reward",
        "points",
        "status",
        "code",
        "valid_until",
        "created_at",
        "changed_at",
        "changed_by",
        "ledger_entry",
        "refund_entry",
    ]
    fields = readonly_fields
    actions = ["cancel_selected", "fulfil_selected"]
    date_hierarchy = "created_at"
    change_list_template = "admin/rewards/redemption/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("code"))
    def shown_code(self, redemption: Redemption) -> str:
        return codes.display(redemption.code) if redemption.code else "—"

    def _each(self, request, queryset, service, done_message) -> None:
        done = 0
        for redemption in queryset:
            try:
                service(redemption=redemption, by=request.user)
                done += 1
            except ApplicationError as error:
                self.message_user(request, f"{redemption}: {error.message}", messages.ERROR)
        if done:
            self.message_user(request, done_message % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Cancel: give the points back"), permissions=["change"])
    def cancel_selected(self, request, queryset) -> None:
        self._each(
            request,
            queryset,
            services.redemption_cancel,
            gettext("%(count)d redemption(s) cancelled and their points returned."),
        )

    @admin.action(description=_("Mark as delivered"), permissions=["change"])
    def fulfil_selected(self, request, queryset) -> None:
        self._each(
            request,
            queryset,
            services.redemption_fulfil,
            gettext("%(count)d redemption(s) marked as delivered."),
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("voucher/", view(self.voucher_view), name="rewards_voucher_check"),
            path("performance/", view(self.performance_view), name="rewards_performance"),
        ] + super().get_urls()

    def voucher_view(self, request: HttpRequest) -> HttpResponse:
        """Check a code at a counter and mark it used (once)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = VoucherCheckForm(request.POST or request.GET or None)
        redemption = None
        if form.is_bound and form.is_valid():
            code = form.cleaned_data["code"]
            try:
                if request.method == "POST" and "use" in request.POST:
                    if not self.has_change_permission(request):
                        raise PermissionDenied
                    redemption = services.voucher_use(code=code, by=request.user)
                    self.message_user(
                        request, gettext("The voucher is now marked as used."), messages.SUCCESS
                    )
                else:
                    redemption = services.voucher_validate(code=code)
            except ApplicationError as error:
                form.add_error("code", str(error.message))
        return render(
            request,
            "admin/rewards/voucher_check.html",
            _context(
                request,
                gettext("Check a voucher"),
                form=form,
                redemption=redemption,
                opts=Redemption._meta,
            ),
        )

    def performance_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = selectors.reward_performance()
        return render(
            request,
            "admin/rewards/performance.html",
            _context(request, gettext("Reward performance"), report=report, opts=Redemption._meta),
        )
