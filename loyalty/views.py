"""Portal pages of the program core: the member's dashboard and points history."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from members.decorators import active_member_required

from . import selectors

HISTORY_PAGE_SIZE = 25


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
