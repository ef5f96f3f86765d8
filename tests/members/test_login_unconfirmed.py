"""Logging in before the e-mail address is confirmed: the right password hears why and gets a
new link; a wrong password hears the one generic message; throttling counts only failures."""

import datetime as dt
import re

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

from loyalty.outbox.models import OutboxMessage
from members import services
from members.models import MemberStatus
from tests.factories import MemberWithLoginFactory, TermsVersionFactory

pytestmark = pytest.mark.django_db

PASSWORD = "stroopwafels-every-day-7"
UNCONFIRMED = "Your e-mail address still needs confirming"
GENERIC = "Please enter a correct"
CONFIRMATION_TASK = "members.tasks.send_confirmation_email"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def pending(program):
    TermsVersionFactory(version="2026.1")
    return services.member_enrol(
        email="sanne@example.com",
        first_name="Sanne",
        last_name="de Vries",
        birth_date=dt.date(1990, 5, 17),
        language="en",
        password=PASSWORD,
        accepted_terms=True,
    )


def log_in(client, email, password):
    return client.post(
        reverse("members:login"), {"username": email, "password": password}, REMOTE_ADDR="10.0.0.9"
    )


def same_page(page: str, email: str) -> str:
    """The page without what differs by design: the address typed and the CSRF token."""
    return re.sub(r'value="[A-Za-z0-9]{64}"', "", page.replace(email, "X"))


def failures() -> int:
    return sum(attempt.failures_since_start for attempt in AccessAttempt.objects.all())


def test_the_right_password_on_an_unconfirmed_address_says_so_and_offers_a_new_link(
    client, pending
):
    response = log_in(client, "Sanne@Example.com", PASSWORD)

    page = response.content.decode()
    assert response.status_code == 200
    assert UNCONFIRMED in page and GENERIC not in page
    assert f'action="{reverse("members:resend_confirmation")}"' in page
    assert 'name="email" value="sanne@example.com"' in page
    assert "_auth_user_id" not in client.session
    assert failures() == 0  # the password was right: not a failed login


def test_the_offered_link_goes_out_through_the_outbox(client, pending):
    before = OutboxMessage.objects.filter(task=CONFIRMATION_TASK).count()

    response = client.post(reverse("members:resend_confirmation"), {"email": "sanne@example.com"})

    assert response.status_code == 302 and response["Location"] == reverse("members:login")
    assert OutboxMessage.objects.filter(task=CONFIRMATION_TASK).count() == before + 1


def test_a_wrong_password_on_an_unconfirmed_address_gets_the_generic_message_and_counts(
    client, pending
):
    response = log_in(client, "sanne@example.com", "not-the-password")

    page = response.content.decode()
    assert GENERIC in page and UNCONFIRMED not in page
    assert "resend" not in page
    assert failures() == 1


def test_unknown_address_and_wrong_password_read_the_same(client, pending):
    unknown = log_in(client, "nobody@example.com", PASSWORD).content.decode()
    wrong = log_in(client, "sanne@example.com", "not-the-password").content.decode()

    assert GENERIC in unknown and GENERIC in wrong
    assert same_page(unknown, "nobody@example.com") == same_page(wrong, "sanne@example.com")
    assert failures() == 2


def test_a_blocked_member_with_the_right_password_gets_the_generic_message(client, program):
    member = MemberWithLoginFactory(status=MemberStatus.BLOCKED, user__is_active=False)

    page = log_in(client, member.email, "correct-horse-battery-staple").content.decode()

    assert GENERIC in page and UNCONFIRMED not in page
    assert "_auth_user_id" not in client.session


def test_five_wrong_passwords_still_lock_out_an_unconfirmed_address(client, pending):
    for _attempt in range(5):
        log_in(client, "sanne@example.com", "not-the-password")

    response = log_in(client, "sanne@example.com", PASSWORD)

    assert response.status_code == 429
    assert UNCONFIRMED not in response.content.decode()


def test_after_confirming_the_same_login_works(client, pending):
    log_in(client, "sanne@example.com", PASSWORD)
    services.member_confirm_email(token=services.confirmation_token(member=pending))

    response = log_in(client, "sanne@example.com", PASSWORD)

    assert response.status_code == 302
    assert "_auth_user_id" in client.session
