"""A member's first steps, in a real browser: enrol, confirm by e-mail, log in, see points."""

import re

import pytest

from loyalty.services import purchase_record
from members.models import Member
from tests.conftest import message_text
from tests.factories import PartnerFactory, TermsVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_customer_enrols_confirms_logs_in_and_sees_balance_and_history(
    page, live_server, smtp_sink, program
):
    TermsVersionFactory(version="2026.1")

    page.goto(f"{live_server.url}/portal/enrol/")
    page.fill("#id_email", "noor@example.com")
    page.fill("#id_first_name", "Noor")
    page.fill("#id_last_name", "Bakker")
    page.fill("#id_birth_date", "1990-05-17")
    page.select_option("#id_language", "en")
    page.fill("#id_password1", "stroopwafels-every-day-7")
    page.fill("#id_password2", "stroopwafels-every-day-7")
    page.get_by_label("I accept the terms and conditions").check()
    page.get_by_role("button", name="Join now").click()
    page.get_by_role("heading", name="Check your e-mail").wait_for()

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "noor@example.com"
    link = re.search(r"http://\S+/portal/confirm/\S+/", message_text(message)).group(0)
    page.goto(link)
    page.get_by_role("heading", name="Welcome, Noor!").wait_for()

    member = Member.objects.get(email="noor@example.com")
    partner = PartnerFactory(name="Amsterdam Centrum")
    purchase_record(partner=partner, external_id="POS-1", member=member, amount="57.80")

    page.get_by_role("link", name="Log in").last.click()
    page.get_by_label("E-mail address").first.fill("noor@example.com")
    page.get_by_label("Password").fill("stroopwafels-every-day-7")
    page.get_by_role("button", name="Log in").click()

    assert page.get_by_test_id("balance").inner_text().startswith("57")
    assert member.member_number in page.content()
    page.get_by_role("link", name="History").first.click()
    row = page.locator("table.entries tbody tr").first
    assert "Purchase POS-1" in row.inner_text()
    assert "Amsterdam Centrum" in row.inner_text()
    assert "+57" in row.inner_text()
