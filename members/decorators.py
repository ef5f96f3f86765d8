"""Access to the member portal."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from .models import MemberStatus


def active_member_required(view):
    """Logged in, with an active membership behind the login, and the current terms accepted
    (a new terms version is asked for before any other portal page)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        from .services import terms_pending

        member = getattr(request.user, "member", None)
        if member is None or member.status != MemberStatus.ACTIVE:
            logout(request)
            messages.error(
                request, _("This login has no active membership. Please contact customer service.")
            )
            return redirect("members:login")
        request.member = member  # type: ignore[attr-defined]
        if not getattr(view, "terms_exempt", False) and terms_pending(member=member):
            return redirect(
                reverse("members:terms_accept") + "?" + urlencode({"next": request.get_full_path()})
            )
        return view(request, *args, **kwargs)

    return wrapper


def terms_exempt(view):
    """Reachable before the member has accepted new terms (the acceptance page itself)."""
    view.terms_exempt = True
    return view
