"""Portal pages of rewards: the catalogue, redeeming with a confirmation, my rewards."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from loyalty.errors import ApplicationError
from loyalty.selectors import member_balance
from members.decorators import active_member_required

from . import codes, selectors, services
from .models import Reward
from .qr import voucher_qr_svg


@active_member_required
def catalogue(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    items = selectors.catalogue_for(member=member)
    return render(
        request,
        "rewards/catalogue.html",
        {
            "items": items,
            "balance": member_balance(member=member),
            "available": [item for item in items if item.can_redeem],
            # "Within reach": only what the member may redeem once they have the points, not
            # what another tier, segment, stock or validity window keeps from them.
            "locked": [item for item in items if not item.can_redeem and item.eligible],
        },
    )


@active_member_required
@require_http_methods(["GET", "POST"])
def redeem(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST redeems (one transaction) or says why not."""
    member = request.member  # type: ignore[attr-defined]
    reward = get_object_or_404(Reward, pk=pk, is_active=True)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        try:
            redemption = services.reward_redeem(member=member, reward=reward)
        except ApplicationError as error:
            # The same page says why, in its error summary (focused, read out), not a message
            # on another page.
            errors.append(str(error.message))
            status = error.http_status
        else:
            messages.success(request, _("Enjoy your reward! We have also sent it by e-mail."))
            return redirect("rewards:redemption", pk=redemption.pk)
    balance = member_balance(member=member)
    return render(
        request,
        "rewards/confirm.html",
        {
            "reward": reward,
            "balance": balance,
            "after": balance - reward.points_cost,
            "errors": errors,
        },
        status=status,
    )


@active_member_required
def my_rewards(request: HttpRequest) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    return render(
        request, "rewards/mine.html", {"redemptions": selectors.redemptions_of(member=member)}
    )


@active_member_required
def redemption_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member = request.member  # type: ignore[attr-defined]
    redemption = get_object_or_404(selectors.redemptions_of(member=member), pk=pk)
    qr = ""
    if redemption.code and redemption.is_issued:
        qr = voucher_qr_svg(redemption.code, title=_("QR code of your voucher"))
    return render(
        request,
        "rewards/redemption.html",
        {
            "redemption": redemption,
            # A cancelled redemption's code is void: not shown as if it could still be used.
            "code": codes.display(redemption.code)
            if redemption.code and not redemption.is_cancelled
            else "",
            "qr": qr,
        },
    )
