"""Open and click tracking in the HTML part of a campaign message.

At send time, after rendering, every http(s) link of the HTML body (except the unsubscribe
link) is rewritten to `/e/c/<token>/`, the token signing the recipient id and the link's target,
and a 1x1 pixel at `/e/o/<token>/` (the recipient id, signed) is appended. The text part is left
alone. One regex pass and one signature per link (docs/campaigns.md, "Tracking").
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import replace

from django.conf import settings
from django.urls import get_script_prefix, reverse

from .rendering import RenderedMessage
from .tokens import click_token, open_token

# A 1x1 transparent GIF (43 bytes).
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

# The href of an <a> tag whose value is an absolute http(s) URL (the inliner quotes attributes).
_LINK = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(["'])\s*(https?://[^"']*?)\s*\2""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


@functools.lru_cache(maxsize=8)
def _url_prefix(name: str, site_url: str, script_prefix: str) -> str:
    """`SITE_URL` + the path of `name` up to its token (reverse() is slow for every link)."""
    marker = "TOKEN"
    url = site_url.rstrip("/") + reverse(name, args=[marker])
    return url[: url.rindex(marker)]


def _prefix(name: str) -> str:
    return _url_prefix(name, settings.SITE_URL, get_script_prefix())


def html_track(*, html_body: str, recipient_id: int, unsubscribe_url: str) -> str:
    """`html_body` with its links rewritten to signed click URLs and the open pixel added."""
    prefix = _prefix("campaign_tracking:click")

    def rewrite(match: re.Match) -> str:
        target = html.unescape(match.group(3))
        if target == unsubscribe_url:
            return match.group(0)
        token = click_token(recipient_id=recipient_id, url=target)
        quote = match.group(2)
        return f"{match.group(1)}{quote}{prefix}{token}/{quote}"

    tracked = _LINK.sub(rewrite, html_body)
    pixel_url = _prefix("campaign_tracking:open") + open_token(recipient_id=recipient_id) + "/"
    pixel = (
        f'<img src="{html.escape(pixel_url)}" width="1" height="1" '
        'alt="" style="display:block;width:1px;height:1px;border:0;">'
    )
    ends = list(_BODY_END.finditer(tracked))
    if not ends:
        return tracked + pixel
    at = ends[-1].start()
    return tracked[:at] + pixel + tracked[at:]


def message_track(
    *, rendered: RenderedMessage, recipient_id: int, unsubscribe_url: str
) -> RenderedMessage:
    """The rendered message with tracking in its HTML part (the text part unchanged)."""
    return replace(
        rendered,
        html=html_track(
            html_body=rendered.html, recipient_id=recipient_id, unsubscribe_url=unsubscribe_url
        ),
    )
