"""Portal pages of the program core: the member's dashboard and points history."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from members.models import MemberStatus

from . import selectors

HISTORY_PAGE_SIZE = 25


def active_member_required(view):
    """Logged in, with a member behind the login whose membership is active."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        member = getattr(request.user, "member", None)
        if member is None or member.status != MemberStatus.ACTIVE:
            logout(request)
            messages.error(
                request, _("This login has no active membership. Please contact customer service.")
            )
            return redirect("members:login")
        request.member = member  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


@active_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    return render(
        request,
        "portal/dashboard.html",
        {
            "member": member,
            "balance": selectors.member_balance(member=member),
            "progress": selectors.tier_progress(member=member),
            "latest_entries": list(selectors.ledger_for_member(member=member)[:5]),
        },
    )


@active_member_required
def history(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    paginator = Paginator(selectors.ledger_for_member(member=member), HISTORY_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "portal/history.html",
        {"member": member, "page": page, "balance": selectors.member_balance(member=member)},
    )
