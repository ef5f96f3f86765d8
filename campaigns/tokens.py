"""Signed tokens in the links of marketing e-mails (unsubscribe, open pixel, tracked links)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .errors import InvalidTrackingLink, InvalidUnsubscribeLink

_UNSUBSCRIBE_SALT = "campaigns.unsubscribe"
_OPEN_SALT = "campaigns.open"
_CLICK_SALT = "campaigns.click"


def unsubscribe_token(*, member_id: int, campaign_id: int | None = None) -> str:
    return signing.dumps({"m": member_id, "c": campaign_id}, salt=_UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(*, member_id: int, campaign_id: int | None = None) -> str:
    """The absolute HTTPS (in production) URL of `List-Unsubscribe` and the footer link."""
    token = unsubscribe_token(member_id=member_id, campaign_id=campaign_id)
    return settings.SITE_URL.rstrip("/") + reverse("campaigns:unsubscribe", args=[token])


def unsubscribe_read(token: str) -> tuple[int, int | None]:
    """(member id, campaign id) of a token, or InvalidUnsubscribeLink if it was not signed
    by us. Unsubscribe links do not expire: a member may use an old e-mail's link."""
    try:
        data = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
        return int(data["m"]), (int(data["c"]) if data.get("c") is not None else None)
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise InvalidUnsubscribeLink() from error


def open_token(*, recipient_id: int) -> str:
    return signing.Signer(salt=_OPEN_SALT).sign_object(recipient_id)


def open_url(*, recipient_id: int) -> str:
    """The absolute URL of a recipient's open pixel."""
    token = open_token(recipient_id=recipient_id)
    return settings.SITE_URL.rstrip("/") + reverse("campaign_tracking:open", args=[token])


def open_read(token: str) -> int:
    """The recipient id of an open-pixel token, or InvalidTrackingLink."""
    try:
        return int(signing.Signer(salt=_OPEN_SALT).unsign_object(token))
    except (signing.BadSignature, TypeError, ValueError) as error:
        raise InvalidTrackingLink() from error


def click_token(*, recipient_id: int, url: str) -> str:
    """The recipient and the link's target, signed: the redirect never goes anywhere we did not
    sign."""
    return signing.Signer(salt=_CLICK_SALT).sign_object([recipient_id, url], compress=True)


def click_url(*, recipient_id: int, url: str) -> str:
    """The absolute URL a link of a recipient's message is rewritten to."""
    token = click_token(recipient_id=recipient_id, url=url)
    return settings.SITE_URL.rstrip("/") + reverse("campaign_tracking:click", args=[token])


def click_read(token: str) -> tuple[int, str]:
    """(recipient id, target URL) of a click token, or InvalidTrackingLink if it was not signed
    by us or its target is not an http(s) URL."""
    try:
        recipient_id, url = signing.Signer(salt=_CLICK_SALT).unsign_object(token)
        recipient_id = int(recipient_id)
    except (signing.BadSignature, TypeError, ValueError) as error:
        raise InvalidTrackingLink() from error
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise InvalidTrackingLink()
    return recipient_id, url
