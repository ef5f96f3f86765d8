"""Member e-mails: sent by a real Celery worker through a real SMTP server."""

import datetime as dt

import pytest

from members.services import member_enrol
from tests.factories import MemberWithLoginFactory, TermsVersionFactory


@pytest.mark.celery_worker
def test_the_confirmation_email_is_sent_by_the_worker_in_the_members_language(
    program, celery_worker, smtp_sink
):
    TermsVersionFactory()

    member = member_enrol(
        email="eva@example.com",
        first_name="Eva",
        birth_date=dt.date(1990, 1, 1),
        language="nl",
        password="a-long-secret-phrase",
        accepted_terms=True,
    )

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "eva@example.com"
    assert "Klantenclub" in message["Subject"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "/portal/confirm/" in body
    assert member.first_name in body


@pytest.mark.celery_worker
def test_enrolling_a_registered_address_mails_its_owner_through_the_worker(
    program, celery_worker, smtp_sink
):
    TermsVersionFactory()
    MemberWithLoginFactory(email="eva@example.com", first_name="Eva", language="en")

    answer = member_enrol(
        email="Eva@Example.com",
        first_name="Not Eva",
        birth_date=dt.date(1990, 1, 1),
        language="nl",
        password="a-long-secret-phrase",
        accepted_terms=True,
    )

    assert answer is None
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "eva@example.com"
    assert message["Subject"] == "You already have an account with Klantenclub"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "/portal/password/reset/" in body
