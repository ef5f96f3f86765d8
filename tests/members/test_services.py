"""Enrolment conditions, confirmation, invitations and consent."""

import datetime as dt
import re

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import timezone

from loyalty.errors import ValidationFailed
from members import errors
from members.models import ConsentRecord, Member, MemberStatus, TermsAcceptance, User
from members.numbers import luhn_valid
from members.selectors import marketing_consent_granted, member_get
from members.services import (
    confirmation_token,
    consent_set,
    invitation_member,
    invitation_token,
    member_confirm_email,
    member_enrol,
    member_invite,
    member_profile_update,
)
from tests.conftest import message_text
from tests.factories import (
    MemberFactory,
    MemberWithLoginFactory,
    TermsVersionFactory,
    email_address_of_length,
)

pytestmark = pytest.mark.django_db

ADULT = dt.date(1990, 1, 1)


@pytest.fixture
def terms(program):
    return TermsVersionFactory(version="2026.1")


def enrol(**overrides):
    fields = {
        "email": "Anna@Example.com",
        "first_name": "Anna",
        "last_name": "de Vries",
        "birth_date": ADULT,
        "language": "nl",
        "password": "a-long-secret-phrase",
        "accepted_terms": True,
        "marketing_consent": True,
    }
    fields.update(overrides)
    return member_enrol(**fields)


def test_enrolment_creates_a_pending_member_with_an_inactive_login(terms):
    member = enrol()

    assert member.status == MemberStatus.PENDING
    assert member.email == "anna@example.com"
    assert luhn_valid(member.member_number) and len(member.member_number) == 12
    assert member.user.is_active is False
    assert TermsAcceptance.objects.filter(member=member, terms_version=terms).exists()
    assert marketing_consent_granted(member=member) is True


def test_enrolment_sends_a_confirmation_email_after_commit(
    terms, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member = enrol()

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["anna@example.com"]
    assert (
        f"/portal/confirm/{confirmation_token(member=member).split(':')[0]}" in mail.outbox[0].body
    )


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"email": "jan@staff.example"}, errors.ExcludedDomain),
        ({"email": "jan@shop.staff.example"}, errors.ExcludedDomain),
        (
            {"birth_date": timezone.localdate().replace(year=timezone.localdate().year - 15)},
            errors.TooYoung,
        ),
        ({"birth_date": None}, errors.BirthDateRequired),
        ({"accepted_terms": False}, errors.TermsNotAccepted),
        ({"email": "not-an-address"}, errors.InvalidEmail),
    ],
)
def test_a_violated_condition_is_refused_and_creates_nothing(terms, overrides, error):
    with pytest.raises(error) as raised:
        enrol(**overrides)

    assert raised.value.field in {"email", "birth_date", "accept_terms"}
    assert Member.objects.count() == 0
    assert User.objects.count() == 0
    assert ConsentRecord.objects.count() == 0


def test_enrolling_an_active_members_address_changes_nothing_and_mails_the_owner(
    terms, smtp_sink, django_capture_on_commit_callbacks
):
    owner = MemberWithLoginFactory(email="anna@example.com", first_name="Anna", language="en")

    with django_capture_on_commit_callbacks(execute=True):
        answer = enrol(email="ANNA@example.COM", first_name="Someone", language="nl")

    assert answer is None
    assert list(Member.objects.values_list("pk", "first_name")) == [(owner.pk, "Anna")]
    assert User.objects.count() == 1
    assert ConsentRecord.objects.count() == 0 and TermsAcceptance.objects.count() == 0
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "anna@example.com"
    assert message["Subject"] == "You already have an account with Klantenclub"
    body = message_text(message)
    assert body.startswith("Hello Anna,")
    assert f"{settings.SITE_URL}/portal/login/" in body
    assert f"{settings.SITE_URL}/portal/password/reset/" in body


def test_the_already_a_member_email_is_in_the_owners_language(
    terms, smtp_sink, django_capture_on_commit_callbacks
):
    MemberWithLoginFactory(email="anna@example.com", first_name="Anna", language="nl")

    with django_capture_on_commit_callbacks(execute=True):
        enrol(email="anna@example.com", language="en")

    [message] = smtp_sink.wait_for(1)
    assert message_text(message).startswith("Hallo Anna,")
    assert '<html lang="nl">' in message.get_body(preferencelist=("html",)).get_content()


def test_enrolling_a_pending_members_address_sends_a_fresh_confirmation_link(
    terms, smtp_sink, django_capture_on_commit_callbacks
):
    pending = MemberFactory(email="anna@example.com", status=MemberStatus.PENDING)

    with django_capture_on_commit_callbacks(execute=True):
        assert enrol(email="anna@example.com") is None

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "anna@example.com"
    token = re.search(r"/portal/confirm/(\S+)/", message_text(message)).group(1)
    assert member_confirm_email(token=token).pk == pending.pk
    assert Member.objects.count() == 1


def test_enrolling_an_invited_address_sends_the_invitation_again(
    terms, smtp_sink, django_capture_on_commit_callbacks
):
    invited = member_invite(email="anna@example.com", first_name="Anna").member

    with django_capture_on_commit_callbacks(execute=True):
        assert enrol(email="anna@example.com") is None

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "anna@example.com"
    assert f"?invitation={invitation_token(member=invited)}" in message_text(message)
    invited.refresh_from_db()
    assert invited.status == MemberStatus.INVITED and invited.user_id is None


@pytest.mark.parametrize("status", [MemberStatus.BLOCKED, MemberStatus.ERASED])
def test_enrolling_a_blocked_or_erased_members_address_sends_nothing(
    terms, smtp_sink, django_capture_on_commit_callbacks, status
):
    MemberFactory(email="anna@example.com", status=status)

    with django_capture_on_commit_callbacks(execute=True):
        assert enrol(email="anna@example.com") is None

    assert smtp_sink.messages == []
    assert Member.objects.count() == 1 and User.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "password"),
    [
        ({"email": "pietjepuk@example.com"}, "pietjepuk1"),
        ({"first_name": "Wilhelmina"}, "wilhelmina1"),
        ({"last_name": "Oosterhuis"}, "Oosterhuis!"),
    ],
)
def test_a_password_like_the_address_or_name_is_refused_and_creates_nothing(
    terms, overrides, password
):
    with pytest.raises(errors.InvalidPassword) as raised:
        enrol(password=password, **overrides)

    assert raised.value.field == "password"
    assert Member.objects.count() == 0 and User.objects.count() == 0


def years_ago(years: int, days: int = 0) -> dt.date:
    today = timezone.localdate()
    if (today.month, today.day) == (2, 29):
        today = today.replace(day=28)
    return today.replace(year=today.year - years) - dt.timedelta(days=days)


@pytest.mark.parametrize(
    "birth_date",
    [dt.date(1, 1, 1), years_ago(120, days=1), timezone.localdate() + dt.timedelta(days=1)],
    ids=["year-1", "120-years-and-a-day", "tomorrow"],
)
def test_an_impossible_birth_date_is_refused_at_enrolment_and_in_the_profile(
    terms, member, birth_date
):
    with pytest.raises(errors.InvalidBirthDate) as raised:
        enrol(birth_date=birth_date)
    assert raised.value.field == "birth_date"
    assert Member.objects.count() == 1  # only the fixture's member

    with pytest.raises(errors.InvalidBirthDate):
        member_profile_update(
            member=member, first_name="A", last_name="B", language="nl", birth_date=birth_date
        )
    member.refresh_from_db()
    assert member.birth_date == dt.date(1985, 6, 15)


def test_an_unknown_language_is_refused_and_creates_nothing(terms):
    with pytest.raises(errors.InvalidLanguage) as raised:
        enrol(language="english")

    assert raised.value.field == "language"
    assert Member.objects.count() == 0 and User.objects.count() == 0


def test_a_birth_date_120_years_ago_is_the_earliest_accepted(terms):
    with pytest.raises(errors.InvalidBirthDate):
        enrol(birth_date=years_ago(120, days=1))

    assert enrol(birth_date=years_ago(120)).pk


def test_an_address_of_254_characters_enrols_and_one_of_255_is_refused(terms):
    assert enrol(email=email_address_of_length(254)).email == email_address_of_length(254)

    with pytest.raises(errors.InvalidEmail) as raised:
        enrol(email=email_address_of_length(255))

    assert raised.value.field == "email" and "254" in str(raised.value.message)
    assert Member.objects.count() == 1 and User.objects.count() == 1


@pytest.mark.parametrize("name", ["first_name", "last_name"])
def test_names_of_150_characters_are_kept_and_151_refused_everywhere(terms, member, name):
    assert getattr(enrol(**{name: "n" * 150}), name) == "n" * 150
    invited = member_invite(email="invited@example.com", **{name: "i" * 150}).member
    assert getattr(invited, name) == "i" * 150

    too_long = "x" * 151
    profile = {"first_name": "A", "last_name": "B", name: too_long}
    attempts = [
        lambda: enrol(email="other@example.com", **{name: too_long}),
        lambda: member_invite(email="again@example.com", **{name: too_long}),
        lambda: member_profile_update(member=member, language="nl", birth_date=None, **profile),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationFailed) as raised:
            attempt()
        assert raised.value.field == name and "150" in str(raised.value.message)
    assert Member.objects.count() == 3
    member.refresh_from_db()
    assert len(getattr(member, name)) < 150


def test_the_member_is_exactly_16_on_the_birthday(terms):
    today = timezone.localdate()
    sixteen_today = (
        today.replace(year=today.year - 16)
        if not (today.month == 2 and today.day == 29)
        else today.replace(year=today.year - 16, day=28)
    )

    member = enrol(birth_date=sixteen_today)

    assert member.pk


def test_without_published_terms_no_acceptance_is_needed(program):
    member = enrol(accepted_terms=False)

    assert member.terms_acceptances.count() == 0


def test_confirming_activates_the_member_and_the_login(terms):
    member = enrol()

    confirmed = member_confirm_email(token=confirmation_token(member=member))

    assert confirmed.status == MemberStatus.ACTIVE
    assert confirmed.enrolled_at is not None
    assert User.objects.get(pk=member.user_id).is_active is True


def test_a_confirmation_link_works_once_and_a_second_click_changes_nothing(terms):
    member = enrol()
    token = confirmation_token(member=member)
    first = member_confirm_email(token=token)

    with pytest.raises(errors.ConfirmationLinkUsed):
        member_confirm_email(token=token)

    member.refresh_from_db()
    assert member.status == MemberStatus.ACTIVE
    assert member.enrolled_at == first.enrolled_at


def test_an_expired_confirmation_link_is_refused_and_changes_nothing(terms):
    member = enrol()
    token = confirmation_token(member=member)

    later = timezone.now() + dt.timedelta(seconds=settings.MEMBER_CONFIRMATION_MAX_AGE + 60)
    with time_machine.travel(later), pytest.raises(errors.ConfirmationLinkExpired):
        member_confirm_email(token=token)

    member.refresh_from_db()
    assert member.status == MemberStatus.PENDING
    assert User.objects.get(pk=member.user_id).is_active is False


def test_a_tampered_confirmation_link_is_refused(terms):
    member = enrol()
    token = confirmation_token(member=member)

    with pytest.raises(errors.ConfirmationLinkInvalid):
        member_confirm_email(token=token[:-2] + "xx")

    member.refresh_from_db()
    assert member.status == MemberStatus.PENDING


def test_an_invitation_prefills_and_completes_the_invited_member(terms, staff_user):
    invitation = member_invite(email="piet@example.com", first_name="Piet", invited_by=staff_user)
    token = invitation_token(member=invitation.member)

    assert invitation_member(token=token).first_name == "Piet"
    member = enrol(email="piet@example.com", invitation_token=token)

    assert member.pk == invitation.member.pk
    assert member.enrolment_source == "invitation"
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None
    with pytest.raises(errors.InvitationInvalid):
        invitation_member(token=token)


def test_inviting_an_excluded_domain_or_existing_member_is_refused(program):
    MemberFactory(email="known@example.com")

    with pytest.raises(errors.ExcludedDomain):
        member_invite(email="boss@staff.example")
    with pytest.raises(errors.EmailTaken):
        member_invite(email="Known@example.com")

    assert Member.objects.count() == 1


def test_consent_state_is_the_latest_record(member):
    consent_set(member=member, granted=True, source="portal")
    consent_set(member=member, granted=False, source="unsubscribe")

    assert marketing_consent_granted(member=member) is False
    assert member.consent_records.count() == 2


def test_a_member_is_found_by_number_or_address_in_any_case(member):
    assert member_get(query=member.member_number) == member
    assert member_get(query=member.email.upper()) == member


@pytest.mark.parametrize("query", ["", "123456789012", "nobody@example.com"])
def test_an_unknown_member_is_a_clear_not_found_error(member, query):
    with pytest.raises(errors.MemberNotFound) as raised:
        member_get(query=query)

    assert raised.value.code == "member_not_found"
    assert raised.value.http_status == 404
