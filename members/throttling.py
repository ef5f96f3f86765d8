"""Login throttling with django-axes: what axes asks of the project, in one place.

Axes counts failed logins per e-mail address and per client address (settings: AXES_*).
This module tells it how to read both from a request, and renders the page a locked-out
login gets: the portal's or the admin's login page with one message, the same whether the
address is registered or not and whether the password was right or wrong.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Iterable

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .forms import PortalLoginForm

logger = logging.getLogger(__name__)


def login_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The e-mail address a login is for, as EmailBackend reads it (any letter case)."""
    if credentials:
        username = credentials.get("username") or credentials.get("email")
    else:
        username = request.POST.get(settings.AXES_USERNAME_FORM_FIELD)
    username = str(username or "").strip().lower()
    return username or None


def client_ip_address(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT proxies in front, the
    address the outermost of them saw (X-Forwarded-For counted from the right, which a client
    cannot forge: each proxy appends to what it received)."""
    remote_addr = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote_addr
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        return remote_addr  # not through all the proxies: all we know is who sent it
    candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr


def cool_off_minutes() -> int:
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    minutes = cool_off_minutes()
    return ngettext(
        "Too many failed login attempts. Try again in %(minutes)d minute, or reset your password.",
        "Too many failed login attempts. Try again in %(minutes)d minutes, or reset your password.",
        minutes,
    ) % {"minutes": minutes}


class _LockedOutMixin:
    """A login form that refuses without checking anything: it only carries the message."""

    def clean(self):
        raise forms.ValidationError(lockout_message(), code="locked_out")


class LockedOutLoginForm(_LockedOutMixin, PortalLoginForm):
    pass


class LockedOutAdminLoginForm(_LockedOutMixin, AdminAuthenticationForm):
    pass


def _locked_out_form(form_class, request: HttpRequest):
    # Bound to what was typed (the address is the visitor's own input), so the page keeps it;
    # the password is never echoed.
    data = {"username": request.POST.get("username", ""), "password": "-"}
    form = form_class(request, data=data)
    form.is_valid()
    return form


def _safe_next(request: HttpRequest) -> str:
    next_url = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return ""


def _is_admin(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.app_name == "admin"
    return request.path.startswith(reverse("admin:index"))


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login page again, status 429, with the lockout message."""
    status = settings.AXES_HTTP_RESPONSE_CODE
    if _is_admin(request):
        from django.contrib import admin

        context = {
            **admin.site.each_context(request),
            "title": _("Log in"),
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": "",
            "form": _locked_out_form(LockedOutAdminLoginForm, request),
            REDIRECT_FIELD_NAME: _safe_next(request) or reverse("admin:index"),
        }
        template = admin.site.login_template or "admin/login.html"
    else:
        context = {
            "form": _locked_out_form(LockedOutLoginForm, request),
            REDIRECT_FIELD_NAME: _safe_next(request),
        }
        template = "members/login.html"
    response = TemplateResponse(request, template, context, status=status)
    return response.render()


def login_unlock(
    *,
    usernames: Iterable[str] = (),
    ip_address: str | None = None,
    attempt_ids: Iterable[int] = (),
) -> int:
    """Forget failed logins so they stop counting: all of each e-mail address in `usernames`,
    all from `ip_address`, and the attempt records `attempt_ids`. Returns how many records
    went. Asked for nothing, it refuses rather than unlock everybody."""
    from axes.models import AccessAttempt
    from axes.utils import reset

    normalised = {login_username(HttpRequest(), {"username": name}) for name in usernames}
    normalised.discard(None)
    attempt_ids = list(attempt_ids)
    if not normalised and not ip_address and not attempt_ids:
        raise ValueError("login_unlock needs e-mail addresses, a client address or attempts")
    removed = 0
    for username in sorted(normalised):
        removed += reset(username=username)
    if ip_address:
        removed += reset(ip=ip_address)
    if attempt_ids:
        removed += AccessAttempt.objects.filter(pk__in=attempt_ids).delete()[0]
    logger.info("login unlocked: %d failed-login record(s) removed", removed)
    return removed
