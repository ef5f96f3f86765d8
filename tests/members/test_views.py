"""Portal pages of members, through Django's test client."""

import datetime as dt
import re

import pytest
import time_machine
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from members.models import Member, MemberStatus, User
from members.services import (
    CONFIRMATION_SALT,
    confirmation_token,
    invitation_token,
    member_invite,
)
from tests.conftest import message_text
from tests.factories import (
    MemberWithLoginFactory,
    TermsVersionFactory,
    email_address_of_length,
)

pytestmark = pytest.mark.django_db

ENROL = {
    "email": "sanne@example.com",
    "first_name": "Sanne",
    "last_name": "Jansen",
    "birth_date": "1991-04-02",
    "language": "nl",
    "password1": "tulips-and-windmills-42",
    "password2": "tulips-and-windmills-42",
    "accept_terms": "on",
    "marketing_consent": "on",
}


@pytest.fixture
def terms(program):
    return TermsVersionFactory(version="2026.1")


def test_enrolling_creates_a_pending_member_and_mails_a_confirmation_link(
    client, terms, smtp_sink, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("members:enrol"), ENROL)

    assert response.status_code == 302
    assert response["Location"] == reverse("members:enrol_sent")
    member = Member.objects.get(email="sanne@example.com")
    assert member.status == MemberStatus.PENDING
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "sanne@example.com"
    assert message["Subject"] == "Bevestig je lidmaatschap van Klantenclub"
    # The signed token carries a timestamp: compare what it names, not its text.
    token = re.search(r"/portal/confirm/(\S+)/", message_text(message)).group(1)
    signer = signing.TimestampSigner(salt=CONFIRMATION_SALT)
    assert signer.unsign(token) == signer.unsign(confirmation_token(member=member))
    assert message.get_body(preferencelist=("html",)) is not None


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"email": "anne@staff.example"}, "email", "domain"),
        ({"birth_date": "2020-01-01"}, "birth_date", "16"),
        ({"accept_terms": ""}, "accept_terms", "terms"),
        ({"email": "not-an-address"}, "email", "valid email"),
        ({"password2": "something-else-entirely"}, "password2", "differ"),
    ],
)
def test_a_refused_enrolment_shows_the_reason_and_creates_nothing(
    client, terms, change, field, fragment
):
    response = client.post(reverse("members:enrol"), {**ENROL, **change}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors
    assert fragment.lower() in " ".join(errors[field]).lower()
    assert Member.objects.count() == 0
    assert User.objects.count() == 0


def _page(response) -> str:
    """The page as a visitor sees it, without the per-response CSRF token."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())


def test_enrolling_with_a_registered_address_answers_exactly_like_a_new_one(
    client, terms, smtp_sink, django_capture_on_commit_callbacks
):
    MemberWithLoginFactory(email="sanne@example.com", first_name="Sanne", language="en")
    url = reverse("members:enrol")

    with django_capture_on_commit_callbacks(execute=True):
        registered = client.post(url, ENROL, follow=True)
        new = client.post(url, {**ENROL, "email": "someone.new@example.com"}, follow=True)

    assert registered.redirect_chain == new.redirect_chain == [(reverse("members:enrol_sent"), 302)]
    assert _page(registered) == _page(new)
    messages = {message["To"]: message for message in smtp_sink.wait_for(2)}
    assert messages["sanne@example.com"]["Subject"] == (
        "You already have an account with Klantenclub"
    )
    assert "/portal/confirm/" in message_text(messages["someone.new@example.com"])
    assert Member.objects.filter(email="sanne@example.com").count() == 1
    assert User.objects.filter(email="sanne@example.com").count() == 1


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"email": "pietjepuk@example.com", "password1": "pietjepuk1"}, "password1", "similar"),
        ({"first_name": "Wilhelmina", "password1": "wilhelmina1"}, "password1", "similar"),
        ({"birth_date": "0001-01-01"}, "birth_date", "120 years"),
        ({"birth_date": "2999-01-01"}, "birth_date", "future"),
        ({"email": email_address_of_length(320)}, "email", "254"),
    ],
)
def test_an_implausible_enrolment_is_a_form_error_and_creates_nothing(
    client, terms, change, field, fragment
):
    data = {**ENROL, **change}
    data["password2"] = data["password1"]

    response = client.post(reverse("members:enrol"), data, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert fragment in " ".join(response.context["form"].errors[field])
    assert Member.objects.count() == 0
    assert User.objects.count() == 0


def test_an_address_of_254_characters_enrols_and_one_of_255_is_a_form_error(client, terms):
    url = reverse("members:enrol")

    too_long = client.post(url, {**ENROL, "email": email_address_of_length(255)})
    at_limit = client.post(url, {**ENROL, "email": email_address_of_length(254)})

    assert too_long.status_code == 200 and "email" in too_long.context["form"].errors
    assert at_limit.status_code == 302
    assert Member.objects.get().email == email_address_of_length(254)


def test_an_invitation_link_prefills_the_form(client, terms):
    invitation = member_invite(email="kees@example.com", first_name="Kees", language="en")

    response = client.get(
        reverse("members:enrol"), {"invitation": invitation_token(member=invitation.member)}
    )

    form = response.context["form"]
    assert form.initial["email"] == "kees@example.com"
    assert form.initial["first_name"] == "Kees"
    assert form.initial["language"] == "en"


def test_confirming_activates_and_welcomes_the_member(client, terms):
    member = MemberWithLoginFactory(status=MemberStatus.PENDING, enrolled_at=None)

    response = client.get(reverse("members:confirm", args=[confirmation_token(member=member)]))

    assert response.status_code == 200
    member.refresh_from_db()
    assert member.status == MemberStatus.ACTIVE
    assert member.member_number in response.content.decode()


def test_an_expired_confirmation_link_offers_a_new_one_and_changes_nothing(client, terms):
    member = MemberWithLoginFactory(status=MemberStatus.PENDING, enrolled_at=None)
    token = confirmation_token(member=member)

    later = timezone.now() + dt.timedelta(seconds=settings.MEMBER_CONFIRMATION_MAX_AGE + 1)
    with time_machine.travel(later):
        response = client.get(reverse("members:confirm", args=[token]), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert b"expired" in response.content
    assert reverse("members:resend_confirmation").encode() in response.content
    member.refresh_from_db()
    assert member.status == MemberStatus.PENDING


def test_a_tampered_confirmation_link_is_refused(client, terms):
    member = MemberWithLoginFactory(status=MemberStatus.PENDING, enrolled_at=None)

    response = client.get(
        reverse("members:confirm", args=[confirmation_token(member=member) + "x"])
    )

    assert response.status_code == 400
    member.refresh_from_db()
    assert member.status == MemberStatus.PENDING


def test_asking_for_a_new_link_answers_the_same_for_unknown_addresses(
    client, terms, smtp_sink, django_capture_on_commit_callbacks
):
    MemberWithLoginFactory(email="wait@example.com", status=MemberStatus.PENDING)
    url = reverse("members:resend_confirmation")

    with django_capture_on_commit_callbacks(execute=True):
        known = client.post(url, {"email": "wait@example.com"}, follow=True)
        unknown = client.post(url, {"email": "nobody@example.com"}, follow=True)

    assert [str(m) for m in known.context["messages"]] == [
        str(m) for m in unknown.context["messages"]
    ]
    assert [m["To"] for m in smtp_sink.wait_for(1)] == ["wait@example.com"]


def test_logging_in_switches_to_the_members_language(client, program):
    MemberWithLoginFactory(email="lid@example.com", language="nl")

    response = client.post(
        reverse("members:login"),
        {"username": "LID@example.com", "password": "correct-horse-battery-staple"},
    )

    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "nl"
    page = client.get(reverse("points:dashboard"))
    assert '<html lang="nl">' in page.content.decode()


def test_the_language_switch_changes_the_page_language(client, program):
    client.post(reverse("set_language"), {"language": "nl", "next": "/portal/login/"})

    response = client.get(reverse("members:login"))

    assert '<html lang="nl">' in response.content.decode()
    assert "Inloggen" in response.content.decode()


def test_password_reset_mails_a_working_link(client, program, smtp_sink):
    MemberWithLoginFactory(email="vergeten@example.com")

    client.post(reverse("members:password_reset"), {"email": "vergeten@example.com"})

    [message] = smtp_sink.wait_for(1)
    link = re.search(r"https?://\S+/portal/password/reset/\S+/", message_text(message)).group(0)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.context["validlink"] is True
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-secret-9", "new_password2": "a-brand-new-secret-9"},
    )
    assert done.status_code == 302
    assert client.login(username="vergeten@example.com", password="a-brand-new-secret-9")
