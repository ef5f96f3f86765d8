"""The confirmation link: an opaque signed token that confirms once, within its lifetime."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from members import errors
from members.models import Member, MemberStatus, User
from members.services import confirmation_token, member_confirm_email
from tests.factories import MemberWithLoginFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending():
    return MemberWithLoginFactory(
        email="Sanne.de.Vries@example.com", status=MemberStatus.PENDING, enrolled_at=None
    )


def test_the_link_carries_no_email_address(pending):
    token = confirmation_token(member=pending)
    path = reverse("members:confirm", args=[token])

    assert "sanne" not in path.lower()
    assert "example" not in path.lower()
    assert "@" not in path and "%40" not in path


def test_the_link_confirms_the_member_it_was_sent_to(pending):
    confirmed = member_confirm_email(token=confirmation_token(member=pending))

    assert confirmed.pk == pending.pk
    pending.refresh_from_db()
    assert pending.status == MemberStatus.ACTIVE
    assert User.objects.get(pk=pending.user_id).is_active is True


def test_the_link_works_once(pending):
    token = confirmation_token(member=pending)
    member_confirm_email(token=token)
    enrolled_at = Member.objects.get(pk=pending.pk).enrolled_at

    with pytest.raises(errors.ConfirmationLinkUsed):
        member_confirm_email(token=token)

    assert Member.objects.get(pk=pending.pk).enrolled_at == enrolled_at


def test_a_link_sent_to_an_address_that_changed_since_is_refused(pending):
    token = confirmation_token(member=pending)
    Member.objects.filter(pk=pending.pk).update(email="someone.else@example.com")

    with pytest.raises(errors.ConfirmationLinkInvalid):
        member_confirm_email(token=token)

    assert Member.objects.get(pk=pending.pk).status == MemberStatus.PENDING


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
        lambda token: "x" + token,  # the payload
        lambda token: token.split(":", 1)[1],  # the payload gone
    ],
    ids=["signature", "payload", "truncated"],
)
def test_a_tampered_link_is_refused_and_changes_nothing(pending, tamper):
    with pytest.raises(errors.ConfirmationLinkInvalid) as refused:
        member_confirm_email(token=tamper(confirmation_token(member=pending)))

    assert not isinstance(refused.value, errors.ConfirmationLinkUsed)
    assert Member.objects.get(pk=pending.pk).status == MemberStatus.PENDING


def test_a_token_signed_for_another_purpose_is_refused(pending):
    forged = signing.dumps({"m": pending.pk, "s": "x"}, salt="members.invitation", compress=True)

    with pytest.raises(errors.ConfirmationLinkInvalid):
        member_confirm_email(token=forged)

    assert Member.objects.get(pk=pending.pk).status == MemberStatus.PENDING


def test_an_expired_link_is_refused_and_changes_nothing(pending):
    token = confirmation_token(member=pending)

    later = timezone.now() + dt.timedelta(seconds=settings.MEMBER_CONFIRMATION_MAX_AGE + 1)
    with time_machine.travel(later), pytest.raises(errors.ConfirmationLinkExpired):
        member_confirm_email(token=token)

    assert Member.objects.get(pk=pending.pk).status == MemberStatus.PENDING


def test_a_link_just_within_its_lifetime_still_works(pending):
    token = confirmation_token(member=pending)

    later = timezone.now() + dt.timedelta(seconds=settings.MEMBER_CONFIRMATION_MAX_AGE - 60)
    with time_machine.travel(later):
        member_confirm_email(token=token)

    assert Member.objects.get(pk=pending.pk).status == MemberStatus.ACTIVE


def test_an_old_format_link_with_the_address_answers_the_new_link_page(client, program, pending):
    # The format before: "<pk>:<address>" signed with a timestamp, the address readable.
    old = signing.TimestampSigner(salt="members.confirm-email").sign(
        f"{pending.pk}:{pending.email}"
    )

    response = client.get(reverse("members:confirm", args=[old]), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    content = response.content.decode()
    assert "This confirmation link is not valid." in content
    assert reverse("members:resend_confirmation") in content
    assert Member.objects.get(pk=pending.pk).status == MemberStatus.PENDING


def test_a_used_link_says_so_and_offers_the_login_page(client, program, pending):
    token = confirmation_token(member=pending)
    assert client.get(reverse("members:confirm", args=[token])).status_code == 200

    response = client.get(reverse("members:confirm", args=[token]), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    content = response.content.decode()
    assert "already been used" in content
    assert reverse("members:login") in content
    assert reverse("members:resend_confirmation") not in content
