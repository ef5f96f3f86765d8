"""Portal pages of a member's own account: profile, consent, password, terms, GDPR, content."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone, translation
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from loyalty.errors import ApplicationError

from .. import services
from ..decorators import active_member_required, terms_exempt
from ..forms import ConsentForm, PasswordConfirmForm, PersonForm
from ..selectors import current_privacy_statement, marketing_consent_granted, published_faq


def _set_language(response: HttpResponse, language: str) -> HttpResponse:
    translation.activate(language)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax"
    )
    return response


@active_member_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    form = PersonForm(
        request.POST if "profile" in request.POST else None,
        initial={
            "first_name": member.first_name,
            "last_name": member.last_name,
            "birth_date": member.birth_date,
            "language": member.language,
        },
    )
    if form.is_bound and form.is_valid():
        try:
            services.member_profile_update(member=member, **form.cleaned_data)
        except ApplicationError as error:
            form.add_service_error(error)
        else:
            translation.activate(member.language)
            messages.success(request, _("Your details have been saved."))
            return _set_language(redirect("members:account"), member.language)
    consent = marketing_consent_granted(member=member)
    return render(
        request,
        "members/account.html",
        {
            "member": member,
            "form": form,
            "consent_form": ConsentForm(initial={"granted": consent}),
            "consent": consent,
        },
    )


@active_member_required
@require_POST
def consent(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    form = ConsentForm(request.POST)
    form.is_valid()
    granted = bool(form.cleaned_data.get("granted"))
    services.consent_change(member=member, granted=granted, source="portal")
    messages.success(
        request,
        _("You will receive our offers by e-mail.")
        if granted
        else _("You will no longer receive offers by e-mail."),
    )
    return redirect("members:account")


@method_decorator(active_member_required, name="dispatch")
class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "members/password_change.html"
    success_url = reverse_lazy("members:account")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password has been changed."))
        return response


@active_member_required
@require_POST
def data_export(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    archive = services.member_data_export(member=member)
    response = HttpResponse(archive, content_type="application/zip")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = (
        f'attachment; filename="personal-data-{member.member_number}-{stamp}.zip"'
    )
    return response


@active_member_required
@require_http_methods(["GET", "POST"])
def erase(request: HttpRequest) -> HttpResponse:
    """Erasure on request, confirmed with the password."""
    member = request.member  # type: ignore[attr-defined]
    form = PasswordConfirmForm(request.POST or None)
    if form.is_bound and form.is_valid():
        if not request.user.check_password(form.cleaned_data["password"]):
            form.add_error("password", _("The password is not correct."))
        else:
            services.member_erase(member=member)
            logout(request)
            messages.success(
                request, _("Your account and personal data have been erased. Goodbye!")
            )
            return redirect("members:login")
    return render(request, "members/erase.html", {"form": form})


@active_member_required
@terms_exempt
@require_http_methods(["GET", "POST"])
def terms_accept(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    terms = services.terms_pending(member=member)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    if terms is None:
        return redirect(next_url or "points:dashboard")
    if request.method == "POST":
        if request.POST.get("accept"):
            services.terms_accept(member=member, terms=terms)
            messages.success(request, _("Thank you for accepting the new terms."))
            return redirect(next_url or "points:dashboard")
        messages.error(request, _("Please accept the terms to continue."))
    return render(request, "members/terms_accept.html", {"terms": terms, "next": next_url})


def faq(request: HttpRequest) -> HttpResponse:
    return render(request, "members/faq.html", {"items": published_faq()})


def privacy(request: HttpRequest) -> HttpResponse:
    return render(request, "members/privacy.html", {"statement": current_privacy_statement()})
