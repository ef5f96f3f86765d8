"""Portal pages of members: enrolment, confirmation, login with the member's language."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from loyalty.errors import ApplicationError

from .. import services, throttling
from ..errors import ConfirmationLinkExpired, InvitationInvalid
from ..forms import EnrolForm, ResendConfirmationForm


@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    invitation = request.GET.get("invitation") or request.POST.get("invitation") or ""
    initial = {"language": translation.get_language() or "nl"}
    if invitation:
        try:
            invited = services.invitation_member(token=invitation)
            initial.update(
                email=invited.email,
                first_name=invited.first_name,
                last_name=invited.last_name,
                language=invited.language,
            )
        except InvitationInvalid as error:
            messages.error(request, str(error.message))
            invitation = ""
    form = EnrolForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.member_enrol(
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                birth_date=data["birth_date"],
                language=data["language"],
                password=data["password1"],
                accepted_terms=data["accept_terms"],
                marketing_consent=data["marketing_consent"],
                invitation_token=invitation or None,
            )
        except ApplicationError as error:
            form.add_service_error(error)
        else:
            return redirect("members:enrol_sent")
    return render(
        request,
        "members/enrol.html",
        {
            "form": form,
            "invitation": invitation,
            "terms": services.current_terms(),
        },
    )


def enrol_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "members/enrol_sent.html")


def confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        member = services.member_confirm_email(token=token)
    except ApplicationError as error:
        return render(
            request,
            "members/confirm_failed.html",
            {
                "error": error,
                "expired": isinstance(error, ConfirmationLinkExpired),
                "form": ResendConfirmationForm(),
            },
            status=400,
        )
    return render(request, "members/confirmed.html", {"member": member})


@require_http_methods(["POST"])
def resend_confirmation(request: HttpRequest) -> HttpResponse:
    form = ResendConfirmationForm(request.POST)
    if form.is_valid():
        services.confirmation_resend_to(email=form.cleaned_data["email"])
    # The same answer whether or not the address is known: no membership enumeration.
    messages.success(
        request, _("If that address is waiting for confirmation, a new link is on its way.")
    )
    return redirect("members:login")


def terms(request: HttpRequest) -> HttpResponse:
    current = services.current_terms()
    return render(request, "members/terms.html", {"terms": current})


class LoginView(auth_views.LoginView):
    template_name = "members/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        member = getattr(self.request.user, "member", None)
        if member is not None:
            # The portal speaks the member's language from the first page after login.
            translation.activate(member.language)
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                member.language,
                max_age=365 * 24 * 3600,
                samesite="Lax",
            )
        return response


class LogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("members:login")


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "members/password_reset_form.html"
    email_template_name = "emails/password_reset.txt"
    html_email_template_name = "emails/password_reset.html"
    subject_template_name = "emails/password_reset_subject.txt"
    success_url = reverse_lazy("members:password_reset_done")

    def form_valid(self, form):
        from ..emails import email_context

        self.extra_email_context = email_context()
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "members/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "members/password_reset_confirm.html"
    success_url = reverse_lazy("members:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        # Whoever can reset the password owns the address: its failed logins stop counting.
        throttling.login_unlock(usernames=[form.user.get_username()])
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "members/password_reset_complete.html"
