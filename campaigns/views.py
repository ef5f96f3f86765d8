"""Portal pages of campaigns: the unsubscribe confirmation (GET) and one-click unsubscribe (POST)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import services
from .errors import InvalidUnsubscribeLink


@csrf_exempt  # RFC 8058: the mail client POSTs without a form of ours; the signed token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET only asks (mail scanners follow links); POST unsubscribes at once. A forged token
    does neither and gets a 400 page."""
    try:
        member = services.unsubscribe_member(token=token)
    except InvalidUnsubscribeLink as error:
        return render(request, "campaigns/unsubscribe_invalid.html", {"error": error}, status=400)
    with translation.override(member.language):
        if request.method == "POST":
            services.unsubscribe(token=token)
            response = render(request, "campaigns/unsubscribed.html", {"member": member})
        else:
            response = render(
                request, "campaigns/unsubscribe.html", {"member": member, "token": token}
            )
        response.headers["Content-Language"] = member.language
    return response
