"""The two back-office roles created by the data migration."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from loyalty.models import LedgerEntry
from tests.factories import MemberFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read English texts; the product's default language is Dutch."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def support_client(client, program):
    agent = StaffUserFactory()
    agent.groups.add(Group.objects.get(name="Support agent"))
    client.force_login(agent)
    return client


@pytest.fixture
def manager_client(client, program):
    manager = StaffUserFactory()
    manager.groups.add(Group.objects.get(name="Program manager"))
    client.force_login(manager)
    return client


def test_a_support_agent_can_look_up_a_member_and_adjust_points(support_client):
    member = MemberFactory()

    page = support_client.get(reverse("admin:members_member_change", args=[member.pk]))
    adjusted = support_client.post(
        reverse("admin:members_member_adjust_points", args=[member.pk]),
        {"points": "15", "reason": "Goodwill"},
    )

    assert page.status_code == 200
    assert b"adjust-points" in page.content
    assert adjusted.status_code == 302
    assert LedgerEntry.objects.get().points == 15


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:loyalty_programsettings_changelist",
        "admin:loyalty_earningrule_changelist",
        "admin:loyalty_earningrule_add",
        "admin:loyalty_tier_add",
        "admin:django_celery_beat_periodictask_changelist",
    ],
)
def test_a_support_agent_cannot_touch_program_settings_or_rules(support_client, url_name):
    assert support_client.get(reverse(url_name)).status_code == 403


def test_a_program_manager_reaches_settings_rules_kpis_and_schedules(manager_client):
    for url_name in [
        "admin:loyalty_programsettings_change",
        "admin:loyalty_earningrule_add",
        "admin:kpis",
        "admin:django_celery_beat_periodictask_changelist",
        "admin:members_invitationimport_add",
    ]:
        args = [1] if url_name.endswith("programsettings_change") else []
        assert manager_client.get(reverse(url_name, args=args)).status_code == 200, url_name


def test_staff_without_the_permission_cannot_adjust_points(client, program):
    clerk = StaffUserFactory()
    client.force_login(clerk)
    member = MemberFactory()

    response = client.post(
        reverse("admin:members_member_adjust_points", args=[member.pk]),
        {"points": "15", "reason": "Sneaky"},
    )

    assert response.status_code == 403
    assert LedgerEntry.objects.count() == 0
