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
from django.views.decorators.csrf import csrf_exempt

from loyalty.errors import ApplicationError

from .. import services, throttling
from ..errors import (
    ConfirmationLinkExpired,
    ConfirmationLinkUsed,
    InvitationInvalid,
    InvitationOptOutLinkInvalid,
)
from ..forms import (
    EnrolForm,
    PortalLoginForm,
    PortalPasswordResetForm,
    PortalSetPasswordForm,
    ResendConfirmationForm,
)
from ..participation import current_conditions
from .errors import allow_methods, method_not_allowed, post_only


@allow_methods(["GET", "POST"])
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
    terms = services.current_terms()
    form = EnrolForm(
        request.POST or None,
        initial=initial,
        birth_date_required=bool(current_conditions().minimum_age),
        terms_required=terms is not None,
    )
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
            "terms": terms,
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
                # A used link needs no new one (the address is confirmed: log in); any other
                # refused link (expired, tampered, of the old format) offers a fresh one.
                "used": isinstance(error, ConfirmationLinkUsed),
                "form": ResendConfirmationForm(),
            },
            status=400,
        )
    return render(request, "members/confirmed.html", {"member": member})


@post_only("members:login")
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


@csrf_exempt  # RFC 8058: the mail client POSTs without a form of ours; the signed token is the proof
@allow_methods(["GET", "POST"])
def invitation_opt_out(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation's opt-out link: GET asks (mail scanners follow links), POST (the button,
    or the mail client's one-click `List-Unsubscribe-Post`) stops invitations to the address."""
    try:
        member = services.invitation_opt_out_member(token=token)
    except InvitationOptOutLinkInvalid as error:
        return render(
            request, "members/invitation_opt_out_invalid.html", {"error": error}, status=400
        )
    # The page speaks the language the invitation was written in.
    with translation.override(member.language):
        if request.method == "POST":
            services.invitation_opt_out(token=token)
            response = render(request, "members/invitation_opted_out.html", {"email": member.email})
        else:
            response = render(
                request,
                "members/invitation_opt_out.html",
                {"email": member.email, "token": token},
            )
        response.headers["Content-Language"] = member.language
    return response


class LoginView(auth_views.LoginView):
    template_name = "members/login.html"
    form_class = PortalLoginForm
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

    def http_method_not_allowed(self, request, *args, **kwargs):
        # A GET (a typed or bookmarked address) does not log out: the styled page says so,
        # and its header carries the "Log out" button.
        return method_not_allowed(request, self._allowed_methods())


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "members/password_reset_form.html"
    form_class = PortalPasswordResetForm
    email_template_name = "emails/password_reset.txt"
    html_email_template_name = "emails/password_reset.html"
    subject_template_name = "emails/password_reset_subject.txt"
    success_url = reverse_lazy("members:password_reset_done")

    def form_valid(self, form):
        from ..emails import email_context, sender_address

        self.extra_email_context = email_context()
        self.from_email = sender_address(self.extra_email_context)
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "members/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "members/password_reset_confirm.html"
    form_class = PortalSetPasswordForm
    success_url = reverse_lazy("members:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        # Whoever can reset the password owns the address: its failed logins stop counting.
        throttling.login_unlock(usernames=[form.user.get_username()])
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "members/password_reset_complete.html"
