"""Invitations carry a one-click opt-out (RFC 2369 / RFC 8058): the address that uses it gets
no further invitations, by sending, by staff or by import; only its own enrolment still works."""

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from members import errors
from members.models import InvitationImport, InvitationOptOut, Member, MemberStatus
from members.services import (
    invitation_import_run,
    invitation_opt_out_token,
    invitation_send,
    member_enrol,
    member_erase,
    member_invite,
)
from tests.conftest import message_text
from tests.factories import TermsVersionFactory

pytestmark = pytest.mark.django_db


def invite_and_receive(smtp_sink, captured, email="anna@example.com", language="en"):
    """Invite through the service (outbox, after commit) and return the received message."""
    with captured(execute=True):
        invitation = member_invite(email=email, first_name="Anna", language=language)
    [message] = smtp_sink.wait_for(1)
    smtp_sink.messages.clear()
    return invitation, message


def header_url(message) -> str:
    """The URL of the List-Unsubscribe header (a long one is folded onto its own line)."""
    return re.fullmatch(r"<(\S+)>", str(message["List-Unsubscribe"]).strip()).group(1)


def opt_out_path(message) -> str:
    return urlsplit(header_url(message)).path


def test_an_invitation_carries_one_click_list_unsubscribe_headers(
    program, smtp_sink, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://club.example"
    _invitation, message = invite_and_receive(smtp_sink, django_capture_on_commit_callbacks)

    assert message["To"] == "anna@example.com"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header_url(message)
    assert url.startswith("https://club.example/portal/invitation/opt-out/")
    assert "anna" not in url  # the link names no address: links end up in access logs
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f'href="{url}"' in html
    assert url in message_text(message)


def test_the_mail_clients_one_click_post_stops_further_invitations(
    program, smtp_sink, django_capture_on_commit_callbacks
):
    invitation, message = invite_and_receive(smtp_sink, django_capture_on_commit_callbacks)
    # A mail client posts without a CSRF token of ours (RFC 8058).
    mail_client = Client(enforce_csrf_checks=True)

    response = mail_client.post(
        opt_out_path(message),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert "anna@example.com" in response.content.decode()
    assert list(InvitationOptOut.objects.values_list("email", flat=True)) == ["anna@example.com"]
    assert invitation_send(invitation_id=invitation.pk) is False
    assert smtp_sink.wait_for(1, timeout=1) == []


def test_opening_the_link_only_asks_and_the_button_confirms(
    program, smtp_sink, django_capture_on_commit_callbacks, client
):
    _invitation, message = invite_and_receive(
        smtp_sink, django_capture_on_commit_callbacks, language="nl"
    )
    path = opt_out_path(message)

    asked = client.get(path)

    assert asked.status_code == 200
    assert asked.headers["Content-Language"] == "nl"  # the invitation's language
    assert f'action="{path}"' in asked.content.decode()
    assert not InvitationOptOut.objects.exists()  # mail scanners follow links: GET changes nothing

    confirmed = client.post(path)

    assert confirmed.status_code == 200
    assert InvitationOptOut.objects.filter(email="anna@example.com").exists()


def test_opting_out_twice_keeps_the_first_opt_out(
    program, smtp_sink, django_capture_on_commit_callbacks, client
):
    _invitation, message = invite_and_receive(smtp_sink, django_capture_on_commit_callbacks)
    client.post(opt_out_path(message))
    first = InvitationOptOut.objects.get()

    again = client.post(opt_out_path(message))

    assert again.status_code == 200
    assert list(InvitationOptOut.objects.all()) == [first]


def test_a_forged_link_changes_nothing(program, smtp_sink, django_capture_on_commit_callbacks):
    _invitation, message = invite_and_receive(smtp_sink, django_capture_on_commit_callbacks)
    forged = opt_out_path(message).replace("/opt-out/", "/opt-out/x")

    response = Client().post(forged)

    assert response.status_code == 400
    assert "niet geldig" in response.content.decode()  # the invitation's language: Dutch
    assert not InvitationOptOut.objects.exists()


def test_a_link_whose_address_is_no_longer_the_members_changes_nothing(program, client):
    invited = member_invite(email="anna@example.com").member
    token = invitation_opt_out_token(member=invited)
    Member.objects.filter(pk=invited.pk).update(email="anna.new@example.com")

    response = client.post(f"/portal/invitation/opt-out/{token}/")

    assert response.status_code == 400
    assert not InvitationOptOut.objects.exists()


def test_staff_cannot_invite_an_address_that_opted_out(program, client):
    invited = member_invite(email="anna@example.com").member
    client.post(f"/portal/invitation/opt-out/{invitation_opt_out_token(member=invited)}/")
    member_erase(member=invited)  # the address is free again, its opt-out stays

    with pytest.raises(errors.InvitationOptedOut):
        member_invite(email="Anna@Example.com")

    assert not Member.objects.filter(email__iexact="anna@example.com").exists()


def test_an_import_skips_an_address_that_opted_out_and_says_why(program, client, admin_user):
    invited = member_invite(email="anna@example.com").member
    client.post(f"/portal/invitation/opt-out/{invitation_opt_out_token(member=invited)}/")
    member_erase(member=invited)
    job = InvitationImport.objects.create(
        file=SimpleUploadedFile("list.csv", b"email\nanna@example.com\nbram@example.com\n"),
        created_by=admin_user,
    )

    invitation_import_run(job=job)

    job.refresh_from_db()
    assert job.created_rows == 1
    assert [(e["row"], e["email"]) for e in job.errors] == [(2, "anna@example.com")]
    assert job.errors[0]["error"] == str(errors.InvitationOptedOut.default_message)
    assert not Member.objects.filter(email="anna@example.com", status=MemberStatus.INVITED)


def test_whoever_enrols_with_an_opted_out_invited_address_still_gets_the_invitation(
    program, smtp_sink, django_capture_on_commit_callbacks, client
):
    TermsVersionFactory()
    _invitation, message = invite_and_receive(smtp_sink, django_capture_on_commit_callbacks)
    client.post(opt_out_path(message))

    with django_capture_on_commit_callbacks(execute=True):
        assert (
            member_enrol(
                email="anna@example.com", birth_date=dt.date(1990, 1, 1), accepted_terms=True
            )
            is None
        )

    [again] = smtp_sink.wait_for(1)
    assert again["To"] == "anna@example.com"
    assert "?invitation=" in message_text(again)
