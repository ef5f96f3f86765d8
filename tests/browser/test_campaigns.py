"""A program manager previews a message, sends a campaign with the button and sees its progress;
a member opens the unsubscribe link and unsubscribes: Dutch and English, phone and laptop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from campaigns.models import Campaign, Message
from campaigns.tokens import unsubscribe_token
from members.selectors import consent_granted
from tests.factories import (
    ConsentRecordFactory,
    MemberFactory,
    MemberScoreFactory,
    SegmentationRunFactory,
    StaffUserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/briefs/shots/campaigns")
PASSWORD = "campaigns-2026!"


def _context(browser, language: str, width: int):
    context = browser.new_context(
        locale="nl-NL" if language == "nl" else "en-GB",
        viewport={"width": width, "height": 900},
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return context, page


@pytest.mark.parametrize("language", ["en", "nl"])
def test_preview_send_and_unsubscribe(browser, live_server, program, settings, language):
    settings.SITE_URL = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    run = SegmentationRunFactory(is_current=True)
    members = MemberFactory.create_batch(6, language=language)
    for member in members:
        MemberScoreFactory(run=run, member=member, segment="champions")
        ConsentRecordFactory(member=member, channel="email", granted=True)
    message = Message.objects.create(
        name="Lente",
        subject_nl="Hoi {{ member.first_name }}",
        subject_en="Hi {{ member.first_name }}",
        html_nl="<h1>Hoi {{ member.first_name }}</h1><p>Je hebt {{ points.balance }} {{ points.name }}.</p>",
        html_en="<h1>Hi {{ member.first_name }}</h1><p>You have {{ points.balance }} {{ points.name }}.</p>",
        text_nl="Hoi {{ member.first_name }}",
        text_en="Hi {{ member.first_name }}",
    )
    campaign = Campaign.objects.create(
        name="Champions", message=message, segments=["champions"], holdout_percent=20
    )
    StaffUserFactory(email="pm@club.example", password=PASSWORD, is_superuser=True)

    for width in (1366, 390):
        context, page = _context(browser, language, width)
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "pm@club.example")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(re.compile(r"/admin/$"))
        page.goto(
            f"{live_server.url}/admin/campaigns/message/{message.pk}/preview/?language={language}"
        )
        page.wait_for_selector("iframe")
        page.screenshot(path=SHOTS / f"preview-{language}-{width}.png", full_page=True)
        page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
        page.screenshot(path=SHOTS / f"draft-{language}-{width}.png", full_page=True)
        context.close()

    context, page = _context(browser, language, 1366)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "pm@club.example")
    page.fill("#id_password", PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    page.locator(".campaign-actions button").filter(
        has_text=re.compile("Send now|Nu versturen")
    ).click()
    page.wait_for_selector("progress[value='100']")
    page.screenshot(path=SHOTS / f"sent-{language}-1366.png", full_page=True)
    context.close()
    campaign.refresh_from_db()
    assert campaign.status == "sent"

    member = members[0]
    token = unsubscribe_token(member_id=member.pk, campaign_id=campaign.pk)
    for width in (390, 1366):
        context, page = _context(browser, language, width)
        page.goto(f"{live_server.url}/portal/email/unsubscribe/{token}/")
        page.screenshot(path=SHOTS / f"unsubscribe-{language}-{width}.png", full_page=True)
        assert consent_granted(member=member)
        if width == 1366:
            page.locator("main button[type=submit], section button[type=submit]").first.click()
            page.wait_for_load_state()
            page.screenshot(path=SHOTS / f"unsubscribed-{language}-{width}.png", full_page=True)
        context.close()
    assert not consent_granted(member=member)
