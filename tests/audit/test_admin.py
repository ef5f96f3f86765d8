"""The audit log page: filterable and searchable, read-only for everybody (superusers
included), readable by program managers only; erasure leaves no name in it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from loyalty.audit.admin import AuditEntryAdmin
from loyalty.audit.models import AuditAction, AuditEntry
from loyalty.audit.services import audit_record, change
from loyalty.models import ProgramSettings
from loyalty.services import points_adjust, points_credit
from members import services as member_services
from rewards.models import Reward
from tests.factories import MemberWithLoginFactory, RewardFactory, StaffUserFactory
from tests.members.test_privacy import tables_holding

pytestmark = pytest.mark.django_db

LOG = "admin:audit_auditentry_changelist"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def log(program, member):
    """Three entries by two staff users on two kinds of objects, one of them last month."""
    anna = StaffUserFactory(email="anna@club.example")
    bram = StaffUserFactory(email="bram@club.example")
    points_credit(member=member, points=50, reason="Welcome")
    points_adjust(member=member, points=5, reason="Goodwill gesture", staff_user=anna)
    reward = RewardFactory(name_en="Cinema ticket")
    audit_record(
        actor=bram,
        action=AuditAction.CHANGED,
        obj=reward,
        changes={"points_cost": change(100, 150)},
        admin_history=False,
    )
    old = audit_record(
        actor=anna,
        action=AuditAction.CHANGED,
        obj=program,
        changes={"name": change("Klantenclub", "Spaarclub")},
        admin_history=False,
    )
    AuditEntry.objects.filter(pk=old.pk).update(created_at=old.created_at - dt.timedelta(days=40))
    return {"anna": anna, "bram": bram, "reward": reward, "member": member}


def listed(response) -> list[str]:
    assert response.status_code == 200
    return [entry.action for entry in response.context["cl"].result_list]


def test_the_log_lists_every_entry_newest_first(admin_client, log):
    response = admin_client.get(reverse(LOG))

    assert listed(response) == ["object.changed", "points.adjusted", "object.changed"]
    page = response.content.decode()
    assert "Goodwill gesture" in page and "anna@club.example" in page


def test_the_log_filters_by_staff_user_action_object_type_and_date(admin_client, log):
    reward_type = ContentType.objects.get_for_model(Reward)
    now = timezone.now()

    by_bram = admin_client.get(reverse(LOG), {"actor__id__exact": log["bram"].pk})
    adjusted = admin_client.get(reverse(LOG), {"action__exact": "points.adjusted"})
    rewards = admin_client.get(reverse(LOG), {"content_type__id__exact": reward_type.pk})
    this_week = admin_client.get(
        reverse(LOG),
        {
            "created_at__gte": (now - dt.timedelta(days=7)).isoformat(),
            "created_at__lt": (now + dt.timedelta(days=1)).isoformat(),
        },
    )

    assert [e.object_id for e in by_bram.context["cl"].result_list] == [str(log["reward"].pk)]
    assert listed(adjusted) == ["points.adjusted"]
    assert [e.object_repr for e in rewards.context["cl"].result_list] == [str(log["reward"])]
    assert len(listed(this_week)) == 2
    page = by_bram.content.decode()
    # The staff filter offers only people who appear in the log, not every login.
    filter_choices = [
        choice["display"]
        for spec in by_bram.context["cl"].filter_specs
        if spec.title == "staff user"
        for choice in spec.choices(by_bram.context["cl"])
    ]
    people = sorted(str(choice) for choice in filter_choices if "@" in str(choice))
    assert people == ["anna@club.example", "bram@club.example"]
    assert "Points adjusted" in page  # the action filter's labels


def test_the_log_searches_reasons_and_objects_and_filters_to_one_object(admin_client, log):
    member = log["member"]
    member_type = ContentType.objects.get_for_model(member)

    found = admin_client.get(reverse(LOG), {"q": "goodwill"})
    one_object = admin_client.get(
        reverse(LOG), {"content_type": member_type.pk, "object_id": member.pk}
    )

    assert listed(found) == ["points.adjusted"]
    assert listed(one_object) == ["points.adjusted"]


def test_an_entry_page_shows_the_changes_with_old_and_new_values(admin_client, log):
    entry = AuditEntry.objects.get(action="points.adjusted")

    page = admin_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk]))

    text = page.content.decode()
    assert page.status_code == 200
    assert "Points balance" in text and ">50<" in text and ">55<" in text
    assert 'name="_save"' not in text  # nothing to save


def test_nobody_may_add_change_or_delete_entries_not_even_a_superuser(
    admin_client, admin_user, rf, log
):
    entry = AuditEntry.objects.first()
    request = rf.get("/")
    request.user = admin_user
    model_admin = AuditEntryAdmin(AuditEntry, admin_site=None)
    before = list(AuditEntry.objects.values_list("pk", "changes", "reason"))

    change_post = admin_client.post(
        reverse("admin:audit_auditentry_change", args=[entry.pk]),
        {"reason": "rewritten", "object_repr": "x"},
    )
    add_post = admin_client.post(
        reverse("admin:audit_auditentry_add"), {"reason": "forged", "action": "object.added"}
    )
    delete_post = admin_client.post(
        reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}
    )
    bulk_delete = admin_client.post(
        reverse(LOG), {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)
    assert change_post.status_code == 403 and add_post.status_code == 403
    assert delete_post.status_code == 403
    assert bulk_delete.status_code == 200  # no delete action offered: the list again
    assert list(AuditEntry.objects.values_list("pk", "changes", "reason")) == before
    codenames = set(
        ContentType.objects.get_for_model(AuditEntry).permission_set.values_list(
            "codename", flat=True
        )
    )
    assert codenames == {"view_auditentry"}


def staff_in(role: str):
    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name=role))
    return user


def test_a_program_manager_reads_the_log_and_a_support_agent_does_not(client, log):
    client.force_login(staff_in("Program manager"))
    manager_page = client.get(reverse(LOG))
    member_page = client.get(reverse("admin:members_member_change", args=[log["member"].pk]))
    client.force_login(staff_in("Support agent"))
    support_page = client.get(reverse(LOG))
    support_member_page = client.get(
        reverse("admin:members_member_change", args=[log["member"].pk])
    )

    assert len(listed(manager_page)) == 3
    assert "Audit log" in member_page.content.decode()  # the link on the member's page
    assert support_page.status_code == 403
    assert support_member_page.status_code == 200
    assert reverse(LOG) not in support_member_page.content.decode()


def test_erasure_leaves_no_name_or_address_in_the_audit_log(admin_client, admin_user, program):
    member = MemberWithLoginFactory(
        first_name="Zephyrine", last_name="Quäckenbosch", email="zq@example.org"
    )
    member.user.email = "zq@example.org"
    member.user.save()
    points_credit(member=member, points=10, reason="Welcome")
    points_adjust(member=member, points=5, reason="Asked by Zephyrine", staff_user=admin_user)
    member_services.member_data_export(member=member, by=admin_user)
    # An entry about another object that names the member, with their address in a change.
    audit_record(
        actor=admin_user,
        action=AuditAction.CHANGED,
        obj=ProgramSettings.load(),
        changes={"excluded_domains": change("zq@example.org", "")},
        reason="Zephyrine Quäckenbosch asked us to",
        admin_history=False,
    )
    assert "audit_auditentry" in tables_holding("Zephyrine", "zq@example.org")
    # The points adjustment's reason stays in the ledger (staff-typed, docs/decisions.md).
    from loyalty.models import LedgerEntry

    LedgerEntry.objects.filter(reason__contains="Zephyrine").update(reason="Goodwill")

    member_services.member_erase(member=member, by=admin_user)

    assert tables_holding("Zephyrine", "Quäckenbosch", "zq@example.org") == {}
    member.refresh_from_db()
    other = AuditEntry.objects.get(content_type=ContentType.objects.get_for_model(ProgramSettings))
    assert other.reason == f"{member} asked us to"
    assert other.changes == {"excluded_domains": {"old": str(member), "new": ""}}
    kinds = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
    assert kinds == [
        "points.adjusted",
        "personal_data.exported",
        "object.changed",
        "member.erased",
    ]
