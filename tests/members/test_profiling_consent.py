"""The profiling objection and the SMS and post channels: per-channel defaults, one record per
change through the portal, the partner API and the admin, and what the member and staff see."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from members import services
from members.models import ConsentChannel, ConsentRecord, MemberStatus
from members.selectors import (
    consent_granted,
    consent_states,
    members_with_consent,
    profiling_objection,
)
from tests.api.conftest import client_for
from tests.factories import MemberFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "stroopwafels-every-day-7"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def member(program):
    user = UserFactory(email="noor@example.com", password=PASSWORD)
    return MemberFactory(user=user, email="noor@example.com", language="en", first_name="Noor")


@pytest.fixture
def member_client(client, member):
    client.force_login(member.user)
    return client


@pytest.fixture
def api(program):
    return client_for(PartnerFactory(name="Webshop"))


def records(member, channel=ConsentChannel.PROFILING) -> list[tuple[bool, str]]:
    return list(
        ConsentRecord.objects.filter(member=member, channel=channel)
        .order_by("recorded_at", "pk")
        .values_list("granted", "source")
    )


# --- defaults --------------------------------------------------------------------------------


def test_without_records_profiling_is_allowed_and_marketing_is_not(member):
    assert consent_states(member=member) == {
        "email": False,
        "sms": False,
        "post": False,
        "profiling": True,
    }
    assert not profiling_objection(member=member)
    assert ConsentChannel.default_granted(ConsentChannel.PROFILING)
    assert not ConsentChannel.default_granted(ConsentChannel.EMAIL)


def test_members_with_consent_follows_each_channels_default(member):
    objector, silent = MemberFactory(), MemberFactory()
    services.consent_set(
        member=objector, granted=False, source="portal", channel=ConsentChannel.PROFILING
    )
    services.consent_set(member=member, granted=True, source="portal", channel=ConsentChannel.SMS)

    profiled = set(members_with_consent(channel=ConsentChannel.PROFILING))
    by_sms = set(members_with_consent(channel=ConsentChannel.SMS))

    assert profiled == {member, silent}
    assert by_sms == {member}


def test_withdrawing_an_objection_nobody_made_records_nothing(member):
    changed = services.consent_change(
        member=member, granted=True, source="portal", channel=ConsentChannel.PROFILING
    )

    assert changed is False and records(member) == []


# --- the portal --------------------------------------------------------------------------------


def test_an_objection_in_the_portal_writes_one_record_and_changes_the_state(member_client, member):
    response = member_client.post(reverse("members:profiling"), {"objection": "1"}, follow=True)
    member_client.post(reverse("members:profiling"), {"objection": "1"})  # again: no record

    assert records(member) == [(False, "portal")]
    assert profiling_objection(member=member)
    assert "Your objection has been recorded" in response.content.decode()
    assert response.context["profiling_objection"] is True
    assert 'name="objection" value="0"' in response.content.decode()  # now: withdraw


def test_withdrawing_the_objection_in_the_portal_writes_one_record(member_client, member):
    member_client.post(reverse("members:profiling"), {"objection": "1"})

    response = member_client.post(reverse("members:profiling"), {"objection": "0"}, follow=True)

    assert records(member) == [(False, "portal"), (True, "portal")]
    assert not profiling_objection(member=member)
    assert "You no longer object to profiling" in response.content.decode()


@pytest.mark.parametrize("data", [{}, {"objection": "maybe"}])
def test_an_unclear_profiling_choice_is_refused_and_records_nothing(member_client, member, data):
    response = member_client.post(reverse("members:profiling"), data, follow=True)

    assert records(member) == []
    assert "Choose whether you object to profiling." in response.content.decode()


def test_sms_and_post_consent_are_recorded_and_shown_in_the_portal(member_client, member):
    response = member_client.post(
        reverse("members:consent"), {"sms": "on", "post": "on"}, follow=True
    )

    assert records(member, ConsentChannel.SMS) == [(True, "portal")]
    assert records(member, ConsentChannel.POST) == [(True, "portal")]
    assert records(member, ConsentChannel.EMAIL) == []  # unticked and never given: no change
    page = response.content.decode()
    assert "You will receive our offers by SMS." in page
    assert "You receive our offers by SMS." in page
    assert "You receive our offers by post." in page
    assert "You do not receive offers by e-mail." in page
    assert response.context["consent_form"].initial["sms"] is True


def test_a_program_without_sms_or_post_asks_only_for_email(member_client, member, settings):
    settings.MEMBER_MARKETING_CHANNELS = ["email"]

    page = member_client.get(reverse("members:account")).content.decode()
    member_client.post(reverse("members:consent"), {"granted": "on", "sms": "on"})

    assert 'name="sms"' not in page and 'name="post"' not in page
    assert "E-mail offers" in page
    assert records(member, ConsentChannel.SMS) == []  # not offered: not recorded
    assert records(member, ConsentChannel.EMAIL) == [(True, "portal")]


def test_the_data_export_holds_the_profiling_choice(member_client, member):
    member_client.post(reverse("members:profiling"), {"objection": "1"})

    response = member_client.post(reverse("members:data_export"))

    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        data = json.loads(archive.read("personal-data.json"))
    assert data["profiling_objection"] is True
    assert data["consents"]["profiling"] is False
    assert data["consents"]["sms"] is False
    assert {"channel": "profiling", "granted": False, "source": "portal"}.items() <= data[
        "consent_records"
    ][-1].items()


def test_erasure_withdraws_sms_and_post_consent(member):
    services.consent_set(member=member, granted=True, source="portal", channel=ConsentChannel.SMS)

    services.member_erase(member=member)

    assert not consent_granted(member=member, channel=ConsentChannel.SMS)
    assert records(member, ConsentChannel.SMS) == [(True, "portal"), (False, "erasure")]
    assert records(member, ConsentChannel.POST) == []  # never granted: nothing to withdraw


# --- the partner API ---------------------------------------------------------------------------


def test_an_objection_through_the_api_member_update_writes_one_record(api, member):
    url = f"/api/v1/members/{member.member_number}/"

    response = api.patch(url, {"consent": {"profiling": False}}, format="json")
    again = api.patch(url, {"consent": {"profiling": False}}, format="json")

    assert response.status_code == again.status_code == 200, response.json()
    assert response.json()["consent"]["profiling"] is False
    assert records(member) == [(False, "api:Webshop")]
    assert profiling_objection(member=member)


def test_the_api_member_update_changes_language_and_consents_together(api, member):
    response = api.patch(
        f"/api/v1/members/{member.member_number}/",
        {"language": "nl", "consent": {"sms": True, "profiling": False}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["language"] == "nl"
    assert response.json()["consent"] == {
        "email": None,
        "sms": True,
        "post": None,
        "profiling": False,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"language": "nl", "consent": {"fax": True}},
        {"language": "nl", "consent": {"profiling": "perhaps"}},
        {},
    ],
)
def test_a_bad_api_member_update_is_400_and_changes_nothing(api, member, body):
    response = api.patch(f"/api/v1/members/{member.member_number}/", body, format="json")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    member.refresh_from_db()
    assert member.language == "en"
    assert not ConsentRecord.objects.filter(member=member).exists()


def test_the_api_consent_endpoint_takes_the_profiling_channel(api, member):
    url = f"/api/v1/members/{member.member_number}/consent/"

    objected = api.post(url, {"channel": "profiling", "granted": False}, format="json")
    withdrawn = api.post(url, {"channel": "profiling", "granted": True}, format="json")

    assert objected.json()["changed"] is True and withdrawn.json()["changed"] is True
    assert records(member) == [(False, "api:Webshop"), (True, "api:Webshop")]


def test_an_api_enrolment_records_the_chosen_channels(api):
    response = api.post(
        "/api/v1/members/",
        {
            "email": "sanne@example.com",
            "birth_date": "1990-04-01",
            "consent": {"email": True, "post": True, "profiling": False},
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["consent"] == {
        "email": True,
        "sms": None,
        "post": True,
        "profiling": False,
    }


# --- the admin ---------------------------------------------------------------------------------


def run_action(admin_client, action: str, *members):
    return admin_client.post(
        reverse("admin:members_member_changelist"),
        {"action": action, helpers.ACTION_CHECKBOX_NAME: [m.pk for m in members]},
        follow=True,
    )


def test_an_objection_in_the_admin_writes_one_record_per_member(admin_client, admin_user, member):
    other = MemberFactory()

    response = run_action(admin_client, "record_profiling_objection", member, other)
    again = run_action(admin_client, "record_profiling_objection", member)

    assert records(member) == [(False, f"admin:{admin_user.pk}")]
    assert profiling_objection(member=member) and profiling_objection(member=other)
    assert "Objection to profiling recorded for 2 member(s)." in response.content.decode()
    assert "1 member(s) already had this choice" in again.content.decode()


def test_withdrawing_the_objection_in_the_admin_restores_profiling(admin_client, member):
    run_action(admin_client, "record_profiling_objection", member)

    run_action(admin_client, "withdraw_profiling_objection", member)

    assert [granted for granted, _source in records(member)] == [False, True]
    assert not profiling_objection(member=member)


def test_the_member_page_shows_every_channels_current_choice(admin_client, member):
    services.consent_set(member=member, granted=True, source="portal", channel=ConsentChannel.POST)
    services.consent_set(
        member=member, granted=False, source="portal", channel=ConsentChannel.PROFILING
    )

    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))

    html = page.content.decode()
    assert "<tr><th>Post</th><td>granted</td></tr>" in html
    assert "<tr><th>SMS</th><td>not granted</td></tr>" in html
    assert "<tr><th>Profiling (segments)</th><td>objected</td></tr>" in html


def test_support_agents_may_record_an_objection(client, member):
    from django.contrib.auth.models import Group

    from tests.factories import StaffUserFactory

    agent = StaffUserFactory()
    agent.groups.add(Group.objects.get(name="Support agent"))
    client.force_login(agent)

    run_action(client, "record_profiling_objection", member)

    assert records(member) == [(False, f"admin:{agent.pk}")]
    assert member.status == MemberStatus.ACTIVE
