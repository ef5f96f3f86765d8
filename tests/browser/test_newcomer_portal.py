"""What a newcomer meets in the portal, in a real browser: a voucher QR code a scanner reads,
the login before confirming, the first level, styled error pages, and room around buttons.
Screenshots (nl and en, 390 and 1366 px) go to SHOTS for a person to look at."""

import datetime as dt
import io
import os
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from loyalty.services import points_credit
from members import services as member_services
from rewards import services
from rewards.models import Redemption
from tests.conftest import message_text
from tests.factories import (
    MemberFactory,
    RewardFactory,
    TermsVersionFactory,
    TierFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "stroopwafels-every-day-7"
SHOTS = Path(os.environ.get("NEWCOMER_SHOTS", "/tmp/briefs/shots/portal"))
VIEWS = [("nl", 390), ("nl", 1366), ("en", 390), ("en", 1366)]


def shot(page, name: str, language: str, width: int) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{language}-{width}.png"), full_page=True)


@pytest.fixture
def new_page(browser, live_server, settings):
    settings.SITE_URL = live_server.url
    contexts = []

    def make(language: str, width: int):
        context = browser.new_context(
            locale="nl-NL" if language == "nl" else "en-GB",
            viewport={"width": width, "height": 900},
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


def member_with_login(email: str, language: str, points: int = 0):
    terms = TermsVersionFactory(version=f"2026.{email[:3]}")
    user = UserFactory(email=email, password=PASSWORD)
    member = MemberFactory(user=user, email=email, language=language, first_name="Noor")
    member.terms_acceptances.create(terms_version=terms)
    if points:
        points_credit(member=member, points=points, reason="Welcome")
    return member


def log_in(page, live_server, email: str) -> None:
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.get_by_test_id("balance").wait_for()


@pytest.mark.parametrize(("language", "width"), VIEWS)
def test_the_portal_voucher_qr_fills_its_box_and_a_scanner_reads_the_code(
    new_page, live_server, program, language, width
):
    email = f"qr-{language}-{width}@example.com"
    member = member_with_login(email, language, points=800)
    reward = RewardFactory(name_en="Cinema ticket", name_nl="Bioscoopkaartje", points_cost=500)
    services.codes_generate(reward=reward, count=1)
    redemption = services.reward_redeem(member=member, reward=reward)
    page = new_page(language, width)

    log_in(page, live_server, email)
    page.goto(f"{live_server.url}/portal/rewards/mine/{redemption.pk}/")
    box = page.locator(".voucher-qr")
    svg = page.locator(".voucher-qr svg")

    shot(page, "voucher", language, width)
    box_size, svg_size = box.bounding_box(), svg.bounding_box()
    assert svg_size["width"] == pytest.approx(box_size["width"], abs=1)
    assert svg_size["width"] >= 200 and svg_size["height"] == pytest.approx(svg_size["width"])
    [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(svg.screenshot())).convert("L"))
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    assert barcode.text == Redemption.objects.get(pk=redemption.pk).code


@pytest.mark.parametrize(("language", "width"), VIEWS)
def test_logging_in_before_confirming_offers_a_new_link_that_arrives(
    new_page, live_server, program, smtp_sink, language, width
):
    TermsVersionFactory(version="2026.1")
    email = f"pending-{language}-{width}@example.com"
    member_services.member_enrol(
        email=email,
        first_name="Sanne",
        birth_date=dt.date(1990, 5, 17),
        language=language,
        password=PASSWORD,
        accepted_terms=True,
    )
    smtp_sink.wait_for(1)
    smtp_sink.messages.clear()
    page = new_page(language, width)

    page.goto(f"{live_server.url}/portal/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    resend = page.locator(".resend-form button")
    resend.wait_for()
    shot(page, "login-unconfirmed", language, width)
    resend.click()
    page.locator(".message-success").wait_for()

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == email
    assert "/portal/confirm/" in message_text(message)
    assert message["From"].addresses[0].display_name == "Klantenclub"


@pytest.mark.parametrize(("language", "width"), VIEWS)
def test_the_login_button_and_the_account_headings_have_room(
    new_page, live_server, program, language, width
):
    email = f"room-{language}-{width}@example.com"
    member_with_login(email, language)
    page = new_page(language, width)

    page.goto(f"{live_server.url}/portal/login/")
    shot(page, "login", language, width)
    password = page.locator("#id_password").bounding_box()
    button = page.locator("main form button[type=submit]").first.bounding_box()
    assert button["y"] - (password["y"] + password["height"]) >= 24

    log_in(page, live_server, email)
    page.goto(f"{live_server.url}/portal/account/")
    shot(page, "account", language, width)
    # Every heading that follows a form's button ("Password" after "Save my choice").
    gaps = page.locator(".card form + h2").evaluate_all(
        "headings => headings.map(h => h.getBoundingClientRect().top"
        " - h.previousElementSibling.getBoundingClientRect().bottom)"
    )
    assert gaps and min(gaps) >= 32


@pytest.mark.parametrize(("language", "width"), VIEWS)
def test_a_new_member_starts_on_the_lowest_level(new_page, live_server, program, language, width):
    TierFactory(name="Bronze", rank=1, threshold=Decimal("0"), color="#a0642d")
    TierFactory(name="Silver", rank=2, threshold=Decimal("500"), color="#6d7a86")
    TermsVersionFactory(version="2026.1")
    email = f"new-{language}-{width}@example.com"
    member = member_services.member_enrol(
        email=email,
        first_name="Sanne",
        birth_date=dt.date(1990, 5, 17),
        language=language,
        password=PASSWORD,
        accepted_terms=True,
    )
    member_services.member_confirm_email(token=member_services.confirmation_token(member=member))
    page = new_page(language, width)

    log_in(page, live_server, email)

    shot(page, "dashboard-new-member", language, width)
    assert page.get_by_test_id("tier").inner_text().strip() == "Bronze"
    progress = page.get_by_test_id("tier-progress").inner_text()
    assert "Silver" in progress and ("500,00" in progress or "500.00" in progress)
    assert page.locator(".progress-bar").bounding_box()["width"] < 2  # nothing done yet


@pytest.mark.parametrize(("language", "width"), VIEWS)
def test_error_pages_are_in_house_style_with_a_way_back(
    new_page, live_server, program, language, width
):
    email = f"lost-{language}-{width}@example.com"
    member_with_login(email, language)
    page = new_page(language, width)

    missing = page.goto(f"{live_server.url}/portal/no-such-page/")
    assert missing.status == 404
    assert page.locator("html").get_attribute("lang") == language
    shot(page, "404", language, width)
    page.locator(".error-page a.button").first.click()
    page.locator("#id_username").wait_for()

    log_in(page, live_server, email)
    not_allowed = page.goto(f"{live_server.url}/portal/logout/")
    assert not_allowed.status == 405
    shot(page, "405", language, width)
    page.locator(".error-page a.button").first.click()
    page.get_by_test_id("balance").wait_for()  # still logged in, back on the dashboard
