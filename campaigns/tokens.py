"""Signed tokens in the links of marketing e-mails (unsubscribe)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .errors import InvalidUnsubscribeLink

_UNSUBSCRIBE_SALT = "campaigns.unsubscribe"


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
