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
from django.utils.translation import gettext_lazy as _lazy

from loyalty.errors import ApplicationError

from .. import services
from ..decorators import active_member_required, terms_exempt
from ..forms import (
    ConsentForm,
    PasswordConfirmForm,
    PersonForm,
    PortalPasswordChangeForm,
    ProfilingForm,
)
from ..models import ConsentChannel
from ..participation import current_conditions
from ..selectors import (
    consent_states,
    current_privacy_statement,
    offered_marketing_channels,
    published_faq,
)
from .errors import allow_methods, post_only

# What the portal says after a channel's choice changed: (granted, withdrawn).
CONSENT_MESSAGES = {
    ConsentChannel.EMAIL: (
        _lazy("You will receive our offers by e-mail."),
        _lazy("You will no longer receive offers by e-mail."),
    ),
    ConsentChannel.SMS: (
        _lazy("You will receive our offers by SMS."),
        _lazy("You will no longer receive offers by SMS."),
    ),
    ConsentChannel.POST: (
        _lazy("You will receive our offers by post."),
        _lazy("You will no longer receive offers by post."),
    ),
}


def _set_language(response: HttpResponse, language: str) -> HttpResponse:
    translation.activate(language)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax"
    )
    return response


@active_member_required
@allow_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    form = PersonForm(
        request.POST if "profile" in request.POST else None,
        birth_date_required=bool(current_conditions().minimum_age),
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
    states = consent_states(member=member)
    channels = offered_marketing_channels()
    return render(
        request,
        "members/account.html",
        {
            "member": member,
            "form": form,
            "consent_form": ConsentForm(
                channels=channels,
                initial={
                    name: states[channel] for name, channel in ConsentForm.FIELD_CHANNELS.items()
                },
            ),
            "consent": states[ConsentChannel.EMAIL],
            "consents": states,
            "marketing_channels": channels,
            "profiling_objection": not states[ConsentChannel.PROFILING],
        },
    )


@active_member_required
@post_only("members:account")
def consent(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    form = ConsentForm(request.POST, channels=offered_marketing_channels())
    form.is_valid()  # checkboxes: anything but "on" is unticked, never an error
    choices = form.choices()
    changed = services.consents_change(member=member, choices=choices, source="portal")
    for channel in changed or [ConsentChannel.EMAIL]:
        granted_text, withdrawn_text = CONSENT_MESSAGES[channel]
        messages.success(request, granted_text if choices[channel] else withdrawn_text)
    return redirect("members:account")


@active_member_required
@post_only("members:account")
def profiling(request: HttpRequest) -> HttpResponse:
    """The member objects to profiling, or withdraws the objection (one record if it changes)."""
    member = request.member  # type: ignore[attr-defined]
    form = ProfilingForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose whether you object to profiling."))
        return redirect("members:account")
    objection = form.cleaned_data["objection"]
    services.consent_change(
        member=member, granted=not objection, source="portal", channel=ConsentChannel.PROFILING
    )
    messages.success(
        request,
        _(
            "Your objection has been recorded: from now on you are left out of offers and "
            "lists based on segments."
        )
        if objection
        else _("You no longer object to profiling: offers can be based on your segment again."),
    )
    return redirect("members:account")


@method_decorator(active_member_required, name="dispatch")
class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "members/password_change.html"
    form_class = PortalPasswordChangeForm
    success_url = reverse_lazy("members:account")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password has been changed."))
        return response


@active_member_required
@post_only("members:account")
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
@allow_methods(["GET", "POST"])
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
@allow_methods(["GET", "POST"])
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
