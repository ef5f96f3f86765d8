"""The program core in the back office: settings, partners, tiers, earning rules, purchases,
the read-only ledger, staff point adjustments and the KPI page.

The KPI page and loyalty's part of the member pages (columns, tier filter, adjust-points page,
points panel) are registered with the admin site in `LoyaltyConfig.ready()`."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.admin import ReadOnlyInline, search_by_member
from members.models import Member

from . import selectors, services
from .admin_api_keys import PartnerAPIKeyInline
from .admin_paginator import EstimatedCountPaginator
from .admin_readonly import ReadOnlyAdmin
from .admin_singleton import SingletonAdmin
from .audit.admin import AuditedModelAdmin
from .earning import bonus_text
from .errors import ApplicationError
from .formats import factor_text, fraction_points_text, money_text, points_text
from .forms import AdjustPointsForm, EarningDryRunForm, RefundForm
from .kpis import program_kpis
from .models import (
    ConsistencyCheck,
    EarningRule,
    LedgerEntry,
    Partner,
    ProgramSettings,
    Purchase,
    PurchaseLine,
    Refund,
    Tier,
    TierChange,
)

LEDGER_INLINE_ROWS = 20


def _admin_context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


def _show_error(form, error: ApplicationError) -> None:
    # "lines[2].amount" belongs to the form's "lines" field.
    field = (error.field or "").split("[")[0].split(".")[0]
    form.add_error(field if field in form.fields else None, str(error.message))


# --- program settings (a singleton) --------------------------------------------------------


@admin.register(ProgramSettings)
class ProgramSettingsAdmin(AuditedModelAdmin, SingletonAdmin):
    fieldsets = (
        (
            _("Basic concept"),
            {
                "fields": (
                    "name",
                    ("points_name", "points_name_en"),
                    "points_per_euro",
                    "point_value_eur",
                    "points_expiry_months",
                )
            },
        ),
        (_("Tiers"), {"fields": ("tier_basis", "tier_grace_months")}),
        (_("Participation"), {"fields": ("minimum_age", "excluded_domains")}),
        (_("House style"), {"fields": ("primary_color", "accent_color", "logo")}),
        (
            _("Objectives"),
            {
                "fields": (
                    "target_active_members",
                    "target_purchases_per_member",
                    "target_spend_per_member",
                    "target_redemption_rate",
                )
            },
        ),
    )


@admin.register(Partner)
class PartnerAdmin(AuditedModelAdmin, admin.ModelAdmin):
    list_display = ["name", "kind", "is_active", "contact_email", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "contact_email"]
    inlines = [PartnerAPIKeyInline]


@admin.register(Tier)
class TierAdmin(AuditedModelAdmin, admin.ModelAdmin):
    list_display = ["name", "rank", "threshold", "multiplier", "colour_swatch"]
    ordering = ["rank"]

    @admin.display(description=_("colour"))
    def colour_swatch(self, tier: Tier) -> str:
        return format_html(
            '<span style="display:inline-block;width:1.2em;height:1.2em;'
            'border-radius:50%;background:{}"></span> {}',
            tier.color,
            tier.color,
        )


# --- earning rules with a dry run ----------------------------------------------------------


@admin.register(EarningRule)
class EarningRuleAdmin(AuditedModelAdmin, admin.ModelAdmin):
    list_display = [
        "name",
        "multiplier",
        "tier",
        "channel",
        "product_category",
        "validity",
        "priority",
        "is_active",
    ]
    list_filter = ["is_active", "channel", "tier"]
    search_fields = ["name", "product_category"]
    list_select_related = ["tier"]
    change_list_template = "admin/loyalty/earningrule/change_list.html"

    @admin.display(description=_("valid"), ordering="valid_from")
    def validity(self, rule: EarningRule) -> str:
        """One short column for the window instead of two long date-times."""
        if rule.valid_from is None and rule.valid_until is None:
            return gettext("always")
        start, end = (
            date_format(timezone.localtime(moment), "SHORT_DATE_FORMAT") if moment else "…"
            for moment in (rule.valid_from, rule.valid_until)
        )
        return gettext("%(start)s to %(end)s") % {"start": start, "end": end}

    def get_urls(self):
        return [
            path(
                "dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name="loyalty_earningrule_dry_run",
            )
        ] + super().get_urls()

    def dry_run_view(self, request: HttpRequest) -> HttpResponse:
        """What a purchase would earn under the current rules; writes nothing."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = EarningDryRunForm(request.POST or None)
        breakdown = None
        if request.method == "POST" and form.is_valid():
            try:
                breakdown = services.earning_preview(**form.cleaned_data)
            except ApplicationError as error:
                _show_error(form, error)
        return render(
            request,
            "admin/loyalty/earningrule/dry_run.html",
            _admin_context(
                request, _("Earning dry run"), form=form, breakdown=breakdown, opts=self.model._meta
            ),
        )


# --- purchases and refunds -----------------------------------------------------------------


class PurchaseLineInline(ReadOnlyInline):
    model = PurchaseLine
    fields = ["product_code", "description", "category", "quantity", "amount"]
    readonly_fields = fields


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = [
        "created_at",
        "external_id",
        "amount",
        "points_reversed",
        "points_expired",
        "points_not_recovered",
        "created_by",
    ]
    readonly_fields = fields


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "partner",
        "member",
        "amount",
        "points_earned",
        "channel",
        "purchased_at",
    ]
    list_filter = ["partner", "channel", "purchased_at"]
    search_fields = ["external_id"]
    search_help_text = _("A member number, a member's e-mail address or a partner's purchase id.")
    list_select_related = ["partner", "member"]
    # No date hierarchy: its DISTINCT years took 3 s over 10M purchases ("purchased at" filters
    # by date); counts past 10,000 are PostgreSQL's estimate (issue 16).
    paginator = EstimatedCountPaginator
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice over millions of rows
    inlines = [PurchaseLineInline, RefundInline]
    readonly_fields = [
        "partner",
        "external_id",
        "member",
        "amount",
        "purchased_at",
        "channel",
        "store",
        "points_earned",
        "refunded_amount",
        "points_reversed",
        "breakdown",
        "created_at",
    ]
    exclude = ["earning_breakdown"]
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        """The member's purchases, or a purchase by its id (any partner: the unique
        (partner, external_id) index answers with one probe per partner)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        by_member, _duplicates = search_by_member(queryset, term, "member")
        partner_ids = list(Partner.objects.values_list("pk", flat=True))
        by_id = queryset.filter(partner_id__in=partner_ids, external_id=term)
        return by_member | by_id, False

    def has_add_permission(self, request) -> bool:
        return False  # purchases come from partners (API, POS); staff refund them

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("how the points were computed"))
    def breakdown(self, purchase: Purchase) -> str:
        data = purchase.earning_breakdown or {}
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>&times;{}</td><td>{}</td></tr>",
            (
                (
                    money_text(line["amount"]),
                    line["category"] or "—",
                    line["rule"] or "—",
                    factor_text(line["rule_multiplier"]),
                    fraction_points_text(line["points"]),
                )
                for line in data.get("lines", [])
            ),
        )
        bonuses = format_html_join(
            "",
            "<li>{}: {}</li>",
            (
                (bonus_text(bonus), points_text(bonus["points"]))
                for bonus in data.get("bonuses", [])
            ),
        )
        return format_html(
            '<div style="overflow-x:auto"><table><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table></div>"
            "<p>{}: {} · {}: {} (&times;{}) · {}: <b>{}</b></p>{}",
            _("amount"),
            _("category"),
            _("rule"),
            _("multiplier"),
            _("points"),
            rows,
            _("base rate"),
            factor_text(data.get("base_rate")),
            _("tier"),
            data.get("tier") or "—",
            factor_text(data.get("tier_multiplier")),
            _("total (rounded down)"),
            points_text(data.get("points")),
            format_html("<p>{}</p><ul>{}</ul>", _("bonuses"), bonuses) if bonuses else "",
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="loyalty_purchase_refund",
            )
        ] + super().get_urls()

    def refund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        purchase = get_object_or_404(Purchase.objects.select_related("member", "partner"), pk=pk)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = services.purchase_refund(
                    purchase=purchase, created_by=request.user, **form.cleaned_data
                )
            except ApplicationError as error:
                _show_error(form, error)
            else:
                self.message_user(
                    request,
                    _("Refunded %(amount)s; %(points)s points reversed.")
                    % {
                        "amount": money_text(refund.amount),
                        "points": points_text(refund.points_reversed),
                    },
                    messages.SUCCESS,
                )
                if refund.points_expired:
                    self.message_user(
                        request,
                        _("%(points)s points of this purchase had already expired.")
                        % {"points": points_text(refund.points_expired)},
                        messages.INFO,
                    )
                if refund.points_not_recovered:
                    self.message_user(
                        request,
                        _("%(points)s points had already been spent and could not be reversed.")
                        % {"points": points_text(refund.points_not_recovered)},
                        messages.WARNING,
                    )
                return HttpResponseRedirect(
                    reverse("admin:loyalty_purchase_change", args=[purchase.pk])
                )
        return render(
            request,
            "admin/loyalty/purchase/refund.html",
            _admin_context(
                request,
                _("Refund purchase %(id)s") % {"id": purchase.external_id},
                form=form,
                purchase=purchase,
                opts=self.model._meta,
                refundable=purchase.amount - purchase.refunded_amount,
            ),
        )


# --- the ledger: read-only everywhere ------------------------------------------------------


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "member",
        "kind",
        "points",
        "balance_after",
        "reason_shown",
        "expires_at",
    ]
    list_filter = ["kind", "source", "created_at"]
    search_fields = ["account__member__member_number"]
    search_help_text = _("A member number or a member's e-mail address.")
    # The reason in the reader's language instead of its stored columns.
    exclude = ["reason", "reason_key", "reason_params"]
    readonly_fields = ["reason_shown"]
    list_select_related = ["account__member", "created_by"]
    # Ordered by the (created_at, id) index; no date hierarchy, estimated counts (issue 16).
    paginator = EstimatedCountPaginator
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice over millions of rows
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        return search_by_member(queryset, search_term, "account__member")

    @admin.display(description=_("member"), ordering="account__member")
    def member(self, entry: LedgerEntry) -> Member:
        return entry.account.member

    @admin.display(description=_("reason"), ordering="reason")
    def reason_shown(self, entry: LedgerEntry) -> str:
        return entry.reason_text


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdmin):
    list_display = ["changed_at", "member", "from_tier", "to_tier", "figure", "reason"]
    list_filter = ["reason", "to_tier"]
    list_select_related = ["account__member", "from_tier", "to_tier"]

    @admin.display(description=_("member"), ordering="account__member")
    def member(self, change: TierChange) -> Member:
        return change.account.member


@admin.register(ConsistencyCheck)
class ConsistencyCheckAdmin(ReadOnlyAdmin):
    list_display = ["ran_at", "accounts_checked", "mismatch_total", "result"]
    readonly_fields = ["ran_at", "accounts_checked", "mismatches"]
    change_list_template = "admin/loyalty/consistencycheck/change_list.html"

    @admin.display(description=_("mismatches"))
    def mismatch_total(self, check: ConsistencyCheck) -> int:
        return check.mismatch_count

    @admin.display(description=_("result"), boolean=True)
    def result(self, check: ConsistencyCheck) -> bool:
        return check.mismatch_count == 0

    def get_urls(self):
        return [
            path(
                "run/",
                self.admin_site.admin_view(self.run_view),
                name="loyalty_consistencycheck_run",
            )
        ] + super().get_urls()

    def run_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        check = services.ledger_consistency_check()
        if check.mismatch_count:
            self.message_user(
                request,
                _(
                    "%(count)s accounts differ from their ledger. Nothing "
                    "was changed; see the check for details."
                )
                % {"count": points_text(check.mismatch_count)},
                messages.ERROR,
            )
        else:
            self.message_user(
                request,
                _("All %(count)s balances equal their ledger.")
                % {"count": points_text(check.accounts_checked)},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:loyalty_consistencycheck_changelist"))


# --- the member page: points, tier, ledger and adjustments ---------------------------------


class TierFilter(admin.SimpleListFilter):
    title = _("tier")
    parameter_name = "tier"

    def lookups(self, request, model_admin):
        return [(str(tier.pk), tier.name) for tier in Tier.objects.order_by("rank")] + [
            ("none", _("No tier"))
        ]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(points_account__tier__isnull=True)
        if self.value():
            return queryset.filter(points_account__tier_id=self.value())
        return queryset


@admin.display(description=_("points"), ordering="points_account__balance")
def balance_column(member: Member) -> int:
    account = getattr(member, "points_account", None)
    return account.balance if account else 0


@admin.display(description=_("tier"), ordering="points_account__tier__rank")
def tier_column(member: Member) -> str:
    account = getattr(member, "points_account", None)
    return account.tier.name if account and account.tier else "—"


def adjust_points_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A staff correction with a mandatory reason; needs members.adjust_points."""
    if not request.user.has_perm("members.adjust_points"):
        raise PermissionDenied
    member = get_object_or_404(Member, pk=pk)
    form = AdjustPointsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = services.points_adjust(
                member=member, staff_user=request.user, **form.cleaned_data
            )
        except ApplicationError as error:
            _show_error(form, error)
        else:
            messages.success(
                request,
                _("%(points)s points; the balance is now %(balance)s.")
                % {
                    "points": ("+" if entry.points > 0 else "") + points_text(entry.points),
                    "balance": points_text(entry.balance_after),
                },
            )
            return HttpResponseRedirect(reverse("admin:members_member_change", args=[member.pk]))
    return render(
        request,
        "admin/loyalty/adjust_points.html",
        _admin_context(
            request,
            _("Adjust points of %(member)s") % {"member": member},
            form=form,
            member=member,
            balance=selectors.member_balance(member=member),
            opts=Member._meta,
        ),
    )


def member_points_urls(model_admin: admin.ModelAdmin) -> list:
    return [
        path(
            "<int:pk>/adjust-points/",
            model_admin.admin_site.admin_view(adjust_points_view),
            name="members_member_adjust_points",
        )
    ]


def member_points_context(request: HttpRequest, member: Member) -> dict:
    return {
        "points_account": selectors.account_for_member(member=member),
        "ledger_entries": list(selectors.ledger_for_member(member=member)[:LEDGER_INLINE_ROWS]),
    }


def member_points_tools(request: HttpRequest, member: Member) -> list[tuple[str, str]]:
    if not request.user.has_perm("members.adjust_points"):
        return []
    return [(_("Adjust points"), reverse("admin:members_member_adjust_points", args=[member.pk]))]


# --- the KPI page --------------------------------------------------------------------------


def kpi_view(request: HttpRequest) -> HttpResponse:
    report = program_kpis()
    charts = {
        "months": report.months,
        "issued": report.points_issued,
        "redeemed": report.points_redeemed,
        "expired": report.points_expired,
        "active": report.active_members,
        "spend": report.spend,
        "new_members": report.new_members,
    }
    return render(
        request,
        "admin/loyalty/kpis.html",
        _admin_context(request, _("Program KPIs"), report=report, charts=charts),
    )


from . import admin_imports  # noqa: E402, F401  (purchase imports, in their own module)
