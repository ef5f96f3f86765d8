"""Portal pages of campaigns: the unsubscribe confirmation (GET) and one-click unsubscribe (POST),
the open pixel and the tracked-link redirect."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from members.models import ConsentChannel
from members.selectors import consent_granted

from . import services
from .errors import InvalidTrackingLink, InvalidUnsubscribeLink
from .tokens import click_read, open_read
from .tracking import PIXEL_GIF


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
        elif not consent_granted(member=member, channel=ConsentChannel.EMAIL):
            # Asking again would suggest the first time did not work.
            response = render(
                request, "campaigns/unsubscribed.html", {"member": member, "already": True}
            )
        else:
            response = render(
                request, "campaigns/unsubscribe.html", {"member": member, "token": token}
            )
        response.headers["Content-Language"] = member.language
    return response


@never_cache
@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """The 1x1 GIF of a message: records the recipient's first open. Always the GIF, also for
    a forged token (which records nothing); never cached, never a cookie."""
    try:
        recipient_id = open_read(token)
    except InvalidTrackingLink:
        pass
    else:
        services.recipient_opened(recipient_id=recipient_id)
    return HttpResponse(PIXEL_GIF, content_type="image/gif")


@never_cache
@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    """A tracked link: records the click and redirects to the URL signed in the token, and only
    there. A forged or altered token gets a 400 page; nothing from the request is a target."""
    try:
        recipient_id, url = click_read(token)
    except InvalidTrackingLink as error:
        return render(request, "campaigns/link_invalid.html", {"error": error}, status=400)
    services.recipient_clicked(recipient_id=recipient_id, url=url)
    return HttpResponseRedirect(url)
