"""What a member does in the portal, in a real browser: rewards, voucher e-mail, consent,
language, data download and erasure; plus an axe-core accessibility check of the pages."""

import json
import re
import zipfile
from pathlib import Path

import pytest

from loyalty.services import points_credit
from members.models import FaqItem, Member, MemberStatus, PrivacyStatement
from members.selectors import marketing_consent_granted
from rewards import codes, services
from rewards.models import Redemption
from tests.conftest import message_text
from tests.factories import MemberFactory, RewardFactory, TermsVersionFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "stroopwafels-every-day-7"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


@pytest.fixture
def member(program):
    terms = TermsVersionFactory(version="2026.1")
    user = UserFactory(email="noor@example.com", password=PASSWORD)
    member = MemberFactory(user=user, email="noor@example.com", language="en", first_name="Noor")
    member.terms_acceptances.create(terms_version=terms)
    points_credit(member=member, points=800, reason="Welcome")
    return member


def log_in(page, live_server):
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("#id_username", "noor@example.com")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Hello Noor").wait_for()


def test_a_member_redeems_a_voucher_and_manages_the_account(page, live_server, member, smtp_sink):
    reward = RewardFactory(name_en="Cinema ticket", name_nl="Bioscoopkaartje", points_cost=500)
    services.codes_generate(reward=reward, count=3)
    RewardFactory(name_en="City trip", name_nl="Stedentrip", points_cost=5000, kind="product")

    log_in(page, live_server)
    page.get_by_role("link", name="Rewards").click()
    page.get_by_text("You need 4,200 more points.").wait_for()
    page.get_by_role("link", name="Redeem Cinema ticket").click()
    page.get_by_text("This costs 500").wait_for()
    page.get_by_role("button", name="Yes, redeem").click()

    redemption = Redemption.objects.get()
    shown = codes.display(redemption.code)
    page.get_by_test_id("voucher-code").get_by_text(shown).wait_for()
    assert page.locator(".voucher-qr svg").count() == 1
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "Your reward: Cinema ticket"
    assert shown in message_text(message)

    page.get_by_role("link", name="My account").click()
    page.get_by_label("Yes, send me offers and news by e-mail").check()
    page.get_by_role("button", name="Save my choice").click()
    page.get_by_text("You receive our offers by e-mail.").first.wait_for()
    assert marketing_consent_granted(member=member)

    page.get_by_role("button", name="NL Nederlands", exact=True).click()
    page.get_by_role("heading", name="Mijn account").wait_for()

    with page.expect_download() as download:
        page.get_by_role("button", name="Mijn gegevens downloaden").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        data = json.loads(archive.read("personal-data.json"))
    assert data["member"]["email"] == "noor@example.com"
    assert data["rewards"][0]["code"] == redemption.code

    page.get_by_role("link", name="Mijn account verwijderen").click()
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Mijn account definitief verwijderen").click()
    page.get_by_text("Je account en persoonsgegevens zijn gewist.").wait_for()
    member.refresh_from_db()
    assert member.status == MemberStatus.ERASED and member.first_name == ""


def test_new_terms_are_accepted_before_continuing(page, live_server, member):
    log_in(page, live_server)
    TermsVersionFactory(version="2027.1")

    page.get_by_role("link", name="Rewards").click()
    page.get_by_role("heading", name="New terms and conditions").wait_for()
    page.get_by_role("button", name="Continue").click()  # not ticked: the browser refuses
    page.get_by_role("heading", name="New terms and conditions").wait_for()
    page.get_by_label("I accept the terms and conditions").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Rewards", exact=True).wait_for()
    assert member.terms_acceptances.count() == 2


def _serious_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + ", ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def test_the_portal_pages_have_no_serious_accessibility_violations(page, live_server, member):
    FaqItem.objects.create(
        question_nl="Hoe spaar ik?", question_en="How do I save?", answer_nl="Zo.", answer_en="So."
    )
    PrivacyStatement.objects.create(version="1", body_nl="Privacy.", body_en="Privacy.")
    reward = RewardFactory(name_en="Cinema ticket", points_cost=500)
    services.codes_generate(reward=reward, count=1)
    RewardFactory(name_en="City trip", points_cost=5000, kind="product")
    redemption = services.reward_redeem(member=member, reward=reward)

    anonymous = [
        "/portal/login/",
        "/portal/enrol/",
        "/portal/faq/",
        "/portal/privacy/",
        "/portal/terms/",
    ]
    for path in anonymous:
        page.goto(live_server.url + path)
        assert _serious_violations(page) == [], path
    log_in(page, live_server)
    pages = [
        "/portal/",
        "/portal/history/",
        "/portal/rewards/",
        f"/portal/rewards/{reward.pk}/redeem/",
        "/portal/rewards/mine/",
        f"/portal/rewards/mine/{redemption.pk}/",
        "/portal/account/",
        "/portal/account/password/",
        "/portal/account/erase/",
    ]
    for path in pages:
        page.goto(live_server.url + path)
        assert re.search(r"/portal/", page.url)
        assert _serious_violations(page) == [], path
    assert Member.objects.get(pk=member.pk).status == MemberStatus.ACTIVE
