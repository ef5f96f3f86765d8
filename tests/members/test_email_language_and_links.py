"""E-mails speak the member's language (the password reset too, whatever page asked for it),
say so in `<html lang>`, and the redemption e-mail links back to the voucher in the portal."""

import re

import pytest
from django.conf import settings
from django.urls import reverse

from rewards import codes
from rewards.services import redemption_email_send
from tests.factories import MemberWithLoginFactory, RedemptionFactory

pytestmark = pytest.mark.django_db


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


@pytest.mark.parametrize(
    ("member_language", "page_language", "subject"),
    [
        ("nl", "en", "Kies een nieuw wachtwoord voor Klantenclub"),
        ("en", "nl", "Choose a new password for Klantenclub"),
    ],
)
def test_the_password_reset_email_is_in_the_members_language_not_the_pages(
    client, program, smtp_sink, member_language, page_language, subject
):
    MemberWithLoginFactory(email="vergeten@example.com", language=member_language)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = page_language

    page = client.post(reverse("members:password_reset"), {"email": "vergeten@example.com"})

    assert page.status_code == 302
    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == subject
    assert f'<html lang="{member_language}">' in html_of(message)


def test_a_password_reset_for_a_login_without_member_uses_the_pages_language(
    client, program, smtp_sink
):
    from tests.factories import UserFactory

    UserFactory(email="kantoor@example.com")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    client.post(reverse("members:password_reset"), {"email": "kantoor@example.com"})

    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "Choose a new password for Klantenclub"
    assert '<html lang="en">' in html_of(message)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_member_email_names_its_language(program, smtp_sink, language):
    redemption = RedemptionFactory(member__language=language, code="KLANT2026")

    redemption_email_send(redemption_id=redemption.pk)

    [message] = smtp_sink.wait_for(1)
    assert f'<html lang="{language}">' in html_of(message)


def test_the_redemption_email_links_to_the_voucher_in_the_portal(program, smtp_sink, settings):
    settings.SITE_URL = "https://club.example"
    redemption = RedemptionFactory(member__language="en", code="KLANT2026")

    redemption_email_send(redemption_id=redemption.pk)

    [message] = smtp_sink.wait_for(1)
    url = "https://club.example" + reverse("rewards:redemption", args=[redemption.pk])
    html = html_of(message)
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>View your voucher</a>', html)
    text = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert f"View your voucher:\n{url}" in text


def test_the_voucher_link_opens_the_members_voucher_page(client, program):
    redemption = RedemptionFactory(member=MemberWithLoginFactory(), code="KLANT2026")
    client.force_login(redemption.member.user)

    page = client.get(reverse("rewards:redemption", args=[redemption.pk]))

    assert page.status_code == 200
    assert codes.display("KLANT2026") in page.content.decode()
