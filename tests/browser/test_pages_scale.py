"""What a long list and a member search look like (issue 16): "about N" where the count is
PostgreSQL's estimate, and a member found by e-mail address in any case, in Dutch and English
at 390 and 1366 px. Screenshots go to /tmp/briefs/shots/pages/ to be looked at."""

import re
from pathlib import Path

import pytest
from django.db import connection

from loyalty import admin_paginator
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/briefs/shots/pages")
PASSWORD = "pages-check-2026!"
VIEWS = [("nl", 390), ("nl", 1366), ("en", 390), ("en", 1366)]


@pytest.fixture
def superuser(db):
    return factories.StaffUserFactory(
        email="admin@example.com", password=PASSWORD, is_superuser=True
    )


def _logged_in_page(browser, live_server, language: str, width: int):
    locale = "nl-NL" if language == "nl" else "en-GB"
    context = browser.new_context(locale=locale, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin@example.com")
    page.fill("#id_password", PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    return context, page


def _purchases(count: int) -> None:
    partner = factories.PartnerFactory(name="Boekhandel")
    for _number in range(count):
        factories.PurchaseFactory(partner=partner)


@pytest.mark.postgres
@pytest.mark.parametrize(("language", "width"), VIEWS)
def test_a_list_past_the_threshold_says_about_how_many(
    browser, live_server, superuser, monkeypatch, language, width
):
    _purchases(24)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE loyalty_purchase")
    monkeypatch.setattr(admin_paginator, "EXACT_UP_TO", 10)
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page = _logged_in_page(browser, live_server, language, width)
    try:
        page.goto(f"{live_server.url}/admin/loyalty/purchase/")
        paginator = page.locator("p.paginator")
        page.screenshot(path=SHOTS / f"{language}-{width}-purchases-about.png", full_page=True)
        text = paginator.inner_text()
    finally:
        context.close()

    word = {"nl": "ongeveer", "en": "about"}[language]
    assert re.search(rf"\b({word}|about) 24 ", text), text
    assert page.url.endswith("/admin/loyalty/purchase/")


@pytest.mark.parametrize(("language", "width"), VIEWS)
def test_a_member_is_found_by_e_mail_address_in_capitals(
    browser, live_server, superuser, language, width
):
    factories.MemberFactory(first_name="Anna", last_name="Jansen", email="anna@example.com")
    factories.MemberFactory.create_batch(3)
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page = _logged_in_page(browser, live_server, language, width)
    try:
        page.goto(f"{live_server.url}/admin/members/member/")
        page.fill("#searchbar", "ANNA@EXAMPLE.COM")
        page.locator("#changelist-search input[type=submit]").click()
        page.wait_for_url(re.compile(r"q=ANNA"))
        page.screenshot(path=SHOTS / f"{language}-{width}-member-search.png", full_page=True)
        rows = page.locator("#result_list tbody tr")
        count = rows.count()
        first = rows.first.inner_text()
        help_text = page.locator("#searchbar_helptext").inner_text()
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    finally:
        context.close()

    assert count == 1
    assert "Anna Jansen" in first
    assert help_text
    assert overflow is False
