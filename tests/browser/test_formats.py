"""One language per page, in a real browser: a member whose history was written while reading
Dutch sees every entry in English after switching (and in Dutch again), numbers with the
page's separators; the KPI page shows "€ 14.090,15" / "€14,090.15". Screenshots of each page
at phone and desktop width land in /tmp/briefs/shots/formats/."""

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from loyalty.services import (
    points_adjust,
    points_credit,
    points_debit,
    purchase_record,
    purchase_refund,
)
from rewards import services as reward_services
from tests.factories import (
    MemberFactory,
    PartnerFactory,
    RewardFactory,
    TermsVersionFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "stroopwafels-every-day-7"
SHOTS = Path("/tmp/briefs/shots/formats")
WIDTHS = {"phone": 390, "desktop": 1366}
ENGLISH = [
    "Purchase P-1",
    "Refund of purchase P-1",
    "Reward: Cake",
    "Cancelled reward: Cake",
    "Points expired",
]
DUTCH = [
    "Aankoop P-1",
    "Terugbetaling van aankoop P-1",
    "Beloning: Taart",
    "Geannuleerde beloning: Taart",
    "Vervallen punten",
]


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def switched_member(program):
    """History written while the member read Dutch; the member now reads English."""
    staff = UserFactory(email="support@loyalty.example", is_staff=True)
    user = UserFactory(email="fleur@example.com", password=PASSWORD)
    member = MemberFactory(user=user, email=user.email, language="nl", first_name="Fleur")
    member.terms_acceptances.create(terms_version=TermsVersionFactory(version="2026.1"))
    with time_machine.travel(timezone.now() - dt.timedelta(days=800)):
        points_credit(member=member, points=40, reason="Welkomstbonus")
    purchase = purchase_record(
        partner=PartnerFactory(name="Webshop"), external_id="P-1", member=member, amount="2941.00"
    ).purchase
    purchase_refund(purchase=purchase, amount="10.00")
    reward = RewardFactory(kind="product", points_cost=30, name_nl="Taart", name_en="Cake")
    reward_services.redemption_cancel(
        redemption=reward_services.reward_redeem(member=member, reward=reward)
    )
    points_adjust(member=member, points=5, reason="Goodwill na klacht", staff_user=staff)
    member.language = "en"
    member.save(update_fields=["language"])
    return member


def log_in(page, live_server):
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("#id_username", "fleur@example.com")
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(lambda url: "/login" not in url)


def use_language(page, live_server, language: str) -> None:
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )


def test_the_history_of_a_member_who_switched_language_reads_in_one_language(
    page, live_server, switched_member
):
    log_in(page, live_server)

    for language, expected, other, balance in [
        ("en", ENGLISH, DUTCH, "2,936 points"),
        ("nl", DUTCH, ENGLISH, "2.936 punten"),
    ]:
        use_language(page, live_server, language)
        for width_name, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(live_server.url + reverse("points:history"))
            table = page.locator("table.entries").inner_text()
            for text in expected:
                assert text in table, (language, text)
            for text in other:
                assert text not in table, (language, text)
            assert "Goodwill na klacht" in table
            shot(page, f"history-{language}-{width_name}")
            page.goto(live_server.url + reverse("points:dashboard"))
            assert balance in " ".join(page.get_by_test_id("balance").inner_text().split())
            shot(page, f"dashboard-{language}-{width_name}")


def test_the_kpi_page_shows_euros_and_counts_in_the_admins_language(page, live_server, program):
    UserFactory(
        email="manager@loyalty.example", password=PASSWORD, is_staff=True, is_superuser=True
    )
    member = MemberFactory(language="nl")
    purchase_record(partner=PartnerFactory(), external_id="K1", member=member, amount="14090.15")
    points_debit(member=member, points=2936, reason="Cadeaubon")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "manager@loyalty.example")
    page.fill("#id_password", PASSWORD)
    page.locator("input[type=submit], button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/login" not in url)

    for language, spend, redeemed in [
        ("nl", "€\u00a014.090,15", "2.936"),
        ("en", "€14,090.15", "2,936"),
    ]:
        use_language(page, live_server, language)
        for width_name, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(live_server.url + reverse("admin:kpis"))
            spend_card = page.locator('[data-kpi="spend_per_member"] .kpi-value').inner_text()
            redeemed_card = page.locator('[data-kpi="points_redeemed"] .kpi-value').inner_text()
            assert (spend_card.strip(), redeemed_card.strip()) == (spend, redeemed)
            shot(page, f"kpis-{language}-{width_name}")
