"""The consent section of the portal's account page in a real browser, in Dutch and English, on
a phone and a laptop: offers by e-mail, SMS and post, and the objection to profiling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from members.models import ConsentChannel, ConsentRecord
from members.selectors import consent_states
from tests.factories import MemberFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("PROFILING_SHOTS", "/tmp/briefs/shots/profiling"))
WIDTHS = {"phone": (390, 844), "laptop": (1366, 900)}


@pytest.fixture
def member(program):
    user = UserFactory(email="noor@example.com")
    return MemberFactory(user=user, email="noor@example.com", first_name="Noor")


def account_page(browser, live_server, member, *, language: str, width: str):
    client = Client()
    client.force_login(member.user)
    width_px, height_px = WIDTHS[width]
    context = browser.new_context(viewport={"width": width_px, "height": height_px})
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            },
            {"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url},
        ]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/portal/account/")
    return context, page


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    section = page.locator("section[aria-labelledby=consent-title]")
    section.scroll_into_view_if_needed()
    section.screenshot(path=str(SHOTS / f"{name}.png"))
    page.screenshot(path=str(SHOTS / f"{name}-page.png"), full_page=True)


@pytest.mark.parametrize("width", ["phone", "laptop"])
def test_a_member_objects_to_profiling_and_chooses_sms_in_english(
    browser, live_server, member, width
):
    context, page = account_page(browser, live_server, member, language="en", width=width)
    try:
        page.get_by_role("heading", name="Offers based on your purchases").wait_for()
        state = page.get_by_test_id("profiling-state")
        assert "You do not object to profiling" in state.inner_text()
        shoot(page, f"en-{width}-before")

        page.get_by_role("button", name="I object to profiling").click()
        page.get_by_text("Your objection has been recorded").wait_for()
        assert "You object to profiling" in page.get_by_test_id("profiling-state").inner_text()

        page.get_by_label("Yes, send me offers by SMS").check()
        page.get_by_role("button", name="Save my choice").click()
        page.get_by_test_id("consent-state-sms").get_by_text(
            "You receive our offers by SMS."
        ).wait_for()
        assert page.get_by_label("Yes, send me offers by SMS").is_checked()
        assert not page.get_by_label("Yes, send me offers by post").is_checked()
        shoot(page, f"en-{width}-after")

        page.get_by_role("button", name="Withdraw my objection").click()
        page.get_by_text("You no longer object to profiling").first.wait_for()
    finally:
        context.close()

    states = consent_states(member=member)
    assert states[ConsentChannel.PROFILING] is True and states[ConsentChannel.SMS] is True
    assert list(
        ConsentRecord.objects.filter(member=member, channel=ConsentChannel.PROFILING)
        .order_by("recorded_at", "pk")
        .values_list("granted", flat=True)
    ) == [False, True]


@pytest.mark.parametrize("width", ["phone", "laptop"])
def test_a_member_objects_to_profiling_and_chooses_post_in_dutch(
    browser, live_server, member, width
):
    context, page = account_page(browser, live_server, member, language="nl", width=width)
    try:
        page.get_by_role("heading", name="Mijn account").wait_for()
        assert page.locator("html").get_attribute("lang") == "nl"
        shoot(page, f"nl-{width}-before")

        page.locator("button[name=objection][value='1']").click()
        page.locator("button[name=objection][value='0']").wait_for()
        page.locator("#id_post").check()
        page.locator("form[action$='/account/consent/'] button[type=submit]").click()
        page.locator("#id_post:checked").wait_for()
        shoot(page, f"nl-{width}-after")
    finally:
        context.close()

    states = consent_states(member=member)
    assert states[ConsentChannel.PROFILING] is False and states[ConsentChannel.POST] is True
    assert states[ConsentChannel.EMAIL] is False and states[ConsentChannel.SMS] is False
