"""Enrolment conditions, confirmation, invitations and consent."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import timezone

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
)
from tests.factories import MemberFactory, TermsVersionFactory

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


def test_enrolling_an_address_that_is_already_a_member_is_refused_in_any_case(terms):
    MemberFactory(email="anna@example.com")

    with pytest.raises(errors.EmailTaken):
        enrol(email="ANNA@example.COM")

    assert Member.objects.count() == 1


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


def test_confirming_twice_is_harmless(terms):
    member = enrol()
    token = confirmation_token(member=member)
    first = member_confirm_email(token=token)

    second = member_confirm_email(token=token)

    assert second.enrolled_at == first.enrolled_at


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
