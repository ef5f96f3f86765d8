"""Member e-mails come from the program's name at the DEFAULT_FROM_EMAIL address."""

import pytest
from django.urls import reverse

from members import services
from tests.factories import MemberWithLoginFactory

pytestmark = pytest.mark.django_db

ADDRESS = "punten@klantenclub.example"


@pytest.fixture(autouse=True)
def sender(settings):
    settings.DEFAULT_FROM_EMAIL = f"Loyalty <{ADDRESS}>"


def test_the_confirmation_email_comes_from_the_program(program, smtp_sink):
    member = MemberWithLoginFactory(status="pending")

    services.confirmation_email_send(member_id=member.pk)

    [message] = smtp_sink.wait_for(1)
    assert message["From"] == f"Klantenclub <{ADDRESS}>"


def test_a_renamed_program_signs_its_mail_with_the_new_name(program, smtp_sink):
    program.name = "Café de Hoek, Spaarclub"
    program.save()
    member = MemberWithLoginFactory(status="pending")

    services.confirmation_email_send(member_id=member.pk)

    [message] = smtp_sink.wait_for(1)
    assert str(message["From"].addresses[0].display_name) == "Café de Hoek, Spaarclub"
    assert message["From"].addresses[0].addr_spec == ADDRESS


def test_the_password_reset_email_comes_from_the_program(client, program, smtp_sink):
    MemberWithLoginFactory(email="vergeten@example.com")

    client.post(reverse("members:password_reset"), {"email": "vergeten@example.com"})

    [message] = smtp_sink.wait_for(1)
    assert message["From"] == f"Klantenclub <{ADDRESS}>"
