"""A campaign's bonus in a real browser, in Dutch on a phone: the member's points history and
the admin's purchase page show it under the campaign's name, and the campaign's page its cost."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.models import BonusKind, Campaign, CampaignStatus, Message, Recipient
from loyalty.services import purchase_record
from tests.factories import (
    MemberFactory,
    PartnerFactory,
    StaffUserFactory,
    TermsVersionFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/briefs/shots/bonus")
PASSWORD = "bonus-points-2026!"


def _page(browser, width: int):
    context = browser.new_context(
        locale="nl-NL",
        viewport={"width": width, "height": 844 if width < 720 else 900},
        device_scale_factor=2 if width < 720 else 1,
        is_mobile=width < 720,
        has_touch=width < 720,
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    return context, page


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_the_bonus_in_the_portal_and_the_admin_in_dutch(browser, live_server, program, settings):
    settings.SITE_URL = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    user = UserFactory(email="noor@example.com", password=PASSWORD)
    member = MemberFactory(user=user, email="noor@example.com", language="nl", first_name="Noor")
    member.terms_acceptances.create(terms_version=TermsVersionFactory(version="2026.1"))
    message = Message.objects.create(
        name="Lente", subject_nl="Hoi", html_nl="<p>Hoi</p>", text_nl="Hoi"
    )
    now = timezone.now()
    campaign = Campaign.objects.create(
        name="Lenteweek dubbele punten",
        message=message,
        segments=["champions"],
        bonus_kind=BonusKind.MULTIPLIER,
        bonus_multiplier="2.00",
        status=CampaignStatus.SENT,
        started_at=now - dt.timedelta(days=1),
        finished_at=now - dt.timedelta(hours=20),
    )
    Recipient.objects.create(
        campaign=campaign,
        member=member,
        email=member.email,
        language="nl",
        status="sent",
        sent_at=now - dt.timedelta(days=1),
    )
    purchase = purchase_record(
        partner=PartnerFactory(name="Bakkerij De Korenschoof"),
        external_id="K-1001",
        member=member,
        amount="42.50",
    ).purchase
    StaffUserFactory(email="pm@club.example", password=PASSWORD, is_superuser=True)

    context, page = _page(browser, 390)
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("#id_username", member.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.get_by_test_id("balance").wait_for()
    page.goto(f"{live_server.url}/portal/history/")
    bonus_row = page.locator(".entry-what", has_text="Lenteweek dubbele punten")
    assert bonus_row.count() == 1 and bonus_row.is_visible()
    assert _no_sideways_scroll(page)
    page.screenshot(path=SHOTS / "portal-history-nl-390.png", full_page=True)
    context.close()

    for width, path, name in [
        (390, f"loyalty/purchase/{purchase.pk}/change/", "admin-purchase-nl-390.png"),
        (1366, f"campaigns/campaign/{campaign.pk}/change/", "admin-campaign-nl-1366.png"),
    ]:
        context, page = _page(browser, width)
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "pm@club.example")
        page.fill("#id_password", PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url(re.compile(r"/admin/$"))
        page.goto(f"{live_server.url}/admin/{path}")
        page.screenshot(path=SHOTS / name, full_page=True)
        text = page.locator("#content").inner_text()
        if "purchase" in path:
            assert "Lenteweek dubbele punten: 42" in text
        else:
            assert "€\u00a00,42" in text  # 42 bonus points at € 0,01
        context.close()
