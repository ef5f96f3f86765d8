"""Each change staff make writes exactly one audit entry (who, what, old and new, why), in the
change's transaction; a change that is refused writes none."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models.fields.files import FieldFile
from django.urls import reverse
from django.utils import timezone

from loyalty.audit.models import AuditAction, AuditEntry
from loyalty.models import ProgramSettings, Purchase
from loyalty.partner_api.models import PartnerAPIKey
from loyalty.services import api_key_create, points_credit, purchase_record
from loyalty.webhooks import services as webhook_services
from loyalty.webhooks.models import WebhookEndpoint
from members import services as member_services
from rewards import services as reward_services
from rewards.models import Redemption, RedemptionStatus, Reward
from segmentation.models import RuleSegment
from tests.factories import MemberFactory, PartnerFactory, RewardFactory

pytestmark = pytest.mark.django_db


def admin_post_unchanged(client, url: str, **changes):
    """Save an admin change form as the page shows it, with `changes`, like staff would."""
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data: dict = {"_save": "Save"}
    for name in form.fields:
        value = changes.get(name, form[name].value())
        if value is None or value is False or isinstance(value, FieldFile):
            continue  # unchecked, empty, or a file input left alone
        if value is True:
            value = "on"
        elif isinstance(value, list | tuple):
            value = [str(item) for item in value]
        elif isinstance(value, dt.datetime):  # the admin's split date and time inputs
            local = timezone.localtime(value)
            data[f"{name}_0"], data[f"{name}_1"] = local.date().isoformat(), f"{local:%H:%M:%S}"
            continue
        elif isinstance(value, dt.date):
            value = value.isoformat()
        data[name] = value
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    return response


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def only_entry(**filters) -> AuditEntry:
    """The one entry there is; fails if there are none or several."""
    [entry] = AuditEntry.objects.filter(**filters)
    return entry


def of(obj) -> dict:
    return {
        "content_type": ContentType.objects.get_for_model(obj, for_concrete_model=False),
        "object_id": str(obj.pk),
    }


# --- services called from the admin --------------------------------------------------------


def test_a_points_adjustment_is_audited_and_shown_in_the_members_history(
    admin_client, admin_user, program, member
):
    points_credit(member=member, points=10, reason="Welcome")

    admin_client.post(
        reverse("admin:members_member_adjust_points", args=[member.pk]),
        {"points": "-4", "reason": "Double booking"},
    )

    entry = only_entry()
    assert (entry.actor, entry.actor_name, entry.action) == (
        admin_user,
        admin_user.email,
        AuditAction.POINTS_ADJUSTED,
    )
    assert (entry.content_type.model, entry.object_id) == ("member", str(member.pk))
    assert entry.object_repr == member.member_number
    assert entry.changes == {"balance": {"old": 10, "new": 6}}
    assert entry.reason == "Double booking"
    assert entry.ip_address == "127.0.0.1"
    assert entry.summary == f"Points of member {member.member_number} adjusted by -4"
    history = admin_client.get(reverse("admin:members_member_history", args=[member.pk]))
    assert "adjusted by -4" in history.content.decode()
    assert "Double booking" in history.content.decode()
    assert LogEntry.objects.filter(object_id=str(member.pk)).count() == 1


@pytest.mark.parametrize(
    "data",
    [
        {"points": "5", "reason": ""},
        {"points": "0", "reason": "x"},
        {"points": "-99", "reason": "x"},
    ],
)
def test_a_refused_adjustment_writes_no_entry(admin_client, program, member, data):
    points_credit(member=member, points=10, reason="Welcome")

    response = admin_client.post(
        reverse("admin:members_member_adjust_points", args=[member.pk]), data
    )

    assert response.status_code == 200  # the form again, with the error
    assert not AuditEntry.objects.exists()
    assert not LogEntry.objects.exists()


def test_a_refund_in_the_admin_is_audited(admin_client, admin_user, program, member):
    purchase = purchase_record(
        partner=PartnerFactory(), external_id="D1", member=member, amount="100.00"
    ).purchase

    admin_client.post(
        reverse("admin:loyalty_purchase_refund", args=[purchase.pk]), {"amount": "25.00"}
    )

    entry = only_entry(**of(purchase))
    purchase.refresh_from_db()
    assert (entry.actor, entry.action) == (admin_user, AuditAction.PURCHASE_REFUNDED)
    assert entry.changes == {
        "refunded_amount": {"old": "0.00", "new": "25.00"},
        "points_reversed": {"old": 0, "new": purchase.points_reversed},
    }
    assert entry.summary == "Refunded 25.00 EUR of purchase D1"
    assert AuditEntry.objects.count() == 1


def test_a_refund_larger_than_the_purchase_writes_no_entry(admin_client, program, member):
    purchase = purchase_record(
        partner=PartnerFactory(), external_id="D1", member=member, amount="10.00"
    ).purchase

    admin_client.post(
        reverse("admin:loyalty_purchase_refund", args=[purchase.pk]), {"amount": "11.00"}
    )

    assert not AuditEntry.objects.exists()
    assert Purchase.objects.get().refunded_amount == Decimal("0.00")


def test_a_partners_refund_is_not_a_staff_change(program, member):
    purchase = purchase_record(
        partner=PartnerFactory(), external_id="D1", member=member, amount="10.00"
    ).purchase

    from loyalty.services import purchase_refund

    purchase_refund(purchase=purchase, amount="5.00", external_id="R1")

    assert not AuditEntry.objects.exists()


@pytest.fixture
def redemption(program) -> Redemption:
    member = MemberFactory()
    points_credit(member=member, points=1000, reason="Welcome")
    reward = RewardFactory(kind="product", points_cost=300)
    return reward_services.reward_redeem(member=member, reward=reward)


def test_cancelling_a_redemption_in_the_admin_is_audited(admin_client, admin_user, redemption):
    admin_client.post(
        reverse("admin:rewards_redemption_changelist"),
        {"action": "cancel_selected", "_selected_action": [redemption.pk]},
    )

    entry = only_entry()
    assert (entry.actor, entry.action) == (admin_user, AuditAction.REDEMPTION_CANCELLED)
    assert entry.object_id == str(redemption.pk)
    assert entry.changes == {"status": {"old": "requested", "new": "cancelled"}}
    assert redemption.member.member_number in entry.object_repr
    assert redemption.member.email not in entry.object_repr


def test_a_redemption_that_cannot_be_cancelled_writes_no_entry(admin_client, redemption):
    reward_services.redemption_fulfil(redemption=redemption)

    admin_client.post(
        reverse("admin:rewards_redemption_changelist"),
        {"action": "cancel_selected", "_selected_action": [redemption.pk]},
    )

    assert Redemption.objects.get().status == RedemptionStatus.FULFILLED
    assert not AuditEntry.objects.exists()


# --- plain admin saves: settings, segments, rewards, webhook endpoints ----------------------


def test_saving_the_program_settings_records_the_changed_fields_with_old_and_new_values(
    admin_client, admin_user, program
):
    url = reverse("admin:loyalty_programsettings_change", args=[program.pk])

    admin_post_unchanged(admin_client, url, name="Spaarclub", points_per_euro="2.50")

    entry = only_entry()
    assert (entry.actor, entry.action) == (admin_user, AuditAction.CHANGED)
    assert entry.object_id == str(program.pk)
    assert entry.changes == {
        "name": {"old": "Klantenclub", "new": "Spaarclub"},
        "points_per_euro": {"old": str(program.points_per_euro), "new": "2.50"},
    }
    history = admin_client.get(reverse("admin:loyalty_programsettings_history", args=[1]))
    page = history.content.decode()
    assert "Audit log" in page and "Klantenclub" in page and "Spaarclub" in page


def test_saving_unchanged_settings_or_invalid_settings_writes_no_entry(admin_client, program):
    url = reverse("admin:loyalty_programsettings_change", args=[program.pk])
    admin_post_unchanged(admin_client, url)
    page = admin_client.get(url)
    data = {name: page.context["adminform"].form[name].value() or "" for name in ("name",)}

    refused = admin_client.post(url, {**data, "points_per_euro": "not a number"})

    assert refused.status_code == 200
    assert not AuditEntry.objects.exists()
    assert ProgramSettings.load().name == "Klantenclub"


def test_adding_changing_and_deleting_a_rule_segment_is_audited(admin_client, admin_user):
    rule = '{"all": [{"field": "quadrant", "op": "in", "value": ["true_friends"]}]}'
    admin_client.post(
        reverse("admin:segmentation_rulesegment_add"),
        {"name": "Regulars", "description": "", "rule": rule, "is_active": "on"},
    )
    segment = RuleSegment.objects.get()
    added = only_entry(action=AuditAction.ADDED)
    assert (added.actor, added.object_id, added.object_repr) == (
        admin_user,
        str(segment.pk),
        "Regulars",
    )

    admin_client.post(
        reverse("admin:segmentation_rulesegment_change", args=[segment.pk]),
        {"name": "Regular buyers", "description": "", "rule": rule, "is_active": "on"},
    )
    changed = only_entry(action=AuditAction.CHANGED)
    assert changed.changes == {"name": {"old": "Regulars", "new": "Regular buyers"}}

    admin_client.post(
        reverse("admin:segmentation_rulesegment_delete", args=[segment.pk]), {"post": "yes"}
    )
    deleted = only_entry(action=AuditAction.DELETED)
    assert (deleted.object_id, deleted.object_repr) == (str(segment.pk), "Regular buyers")
    assert AuditEntry.objects.count() == 3


def test_an_invalid_rule_segment_writes_no_entry(admin_client):
    response = admin_client.post(
        reverse("admin:segmentation_rulesegment_add"),
        {"name": "Broken", "description": "", "rule": '{"all": [{"field": "nope"}]}'},
    )

    assert response.status_code == 200
    assert not RuleSegment.objects.exists()
    assert not AuditEntry.objects.exists()


def test_changing_a_reward_records_the_fields_including_its_segments(admin_client, program):
    reward = RewardFactory(points_cost=100, name_en="Cinema ticket")
    segment = RuleSegment.objects.create(name="Film fans", rule={"all": []})

    admin_post_unchanged(
        admin_client,
        reverse("admin:rewards_reward_change", args=[reward.pk]),
        points_cost=150,
        segments=[segment.pk],
    )

    entry = only_entry(**of(reward))
    assert entry.action == AuditAction.CHANGED
    assert entry.changes == {
        "points_cost": {"old": 100, "new": 150},
        "segments": {"old": [], "new": ["Film fans"]},
    }
    assert Reward.objects.get().points_cost == 150


def test_changing_and_rotating_a_webhook_endpoint_is_audited(admin_client, admin_user, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint = webhook_services.endpoint_create(
        partner=PartnerFactory(), url="https://127.0.0.1:9/hooks", event_types=["points.earned"]
    )
    old_secret = endpoint.secret

    admin_post_unchanged(
        admin_client,
        reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]),
        description="Orders",
    )
    admin_client.post(
        reverse("admin:webhooks_webhookendpoint_changelist"),
        {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
    )

    changed = only_entry(action=AuditAction.CHANGED)
    assert (changed.actor, changed.object_id) == (admin_user, str(endpoint.pk))
    assert changed.changes == {"description": {"old": "", "new": "Orders"}}
    rotated = only_entry(action=AuditAction.WEBHOOK_SECRET_ROTATED)
    assert rotated.summary == "Signing secret of https://127.0.0.1:9/hooks rotated"
    assert AuditEntry.objects.count() == 2
    texts = str(list(AuditEntry.objects.values_list("changes", "description_params")))
    assert old_secret not in texts and WebhookEndpoint.objects.get().secret not in texts


# --- API keys, exports, erasure --------------------------------------------------------------


def test_creating_and_revoking_an_api_key_in_the_admin_writes_one_entry_each(
    admin_client, admin_user, program
):
    partner = PartnerFactory(name="Webshop")
    response = admin_client.post(
        reverse("admin:partner_api_partnerapikey_add"),
        {"partner": partner.pk, "name": "Till 3", "scopes": ["purchases:write"]},
    )
    assert response.status_code == 302
    api_key = PartnerAPIKey.objects.get()

    admin_client.post(
        reverse("admin:partner_api_partnerapikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [api_key.pk]},
    )

    created = only_entry(action=AuditAction.API_KEY_CREATED)
    assert (created.actor, created.object_id) == (admin_user, api_key.pk)
    assert created.changes["scopes"] == {"old": None, "new": ["purchases:write"]}
    assert created.changes["partner"] == {"old": None, "new": "Webshop"}
    revoked = only_entry(action=AuditAction.API_KEY_REVOKED)
    assert revoked.changes == {"revoked": {"old": False, "new": True}}
    assert AuditEntry.objects.count() == 2


def test_an_api_key_without_scopes_is_refused_and_writes_no_entry(admin_client, admin_user):
    from loyalty.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        api_key_create(partner=PartnerFactory(), name="Till", scopes=[], created_by=admin_user)

    assert not AuditEntry.objects.exists()


def test_a_staff_export_of_personal_data_is_audited_without_the_name(
    admin_client, admin_user, program
):
    member = MemberFactory(first_name="Zephyrine", email="zq@example.org")

    response = admin_client.get(reverse("admin:members_member_export", args=[member.pk]))

    assert response.status_code == 200
    entry = only_entry()
    assert (entry.actor, entry.action, entry.object_id) == (
        admin_user,
        AuditAction.PERSONAL_DATA_EXPORTED,
        str(member.pk),
    )
    assert "Zephyrine" not in entry.object_repr + entry.summary
    assert member.member_number in entry.summary


def test_a_members_own_export_is_not_a_staff_change(member_client):
    response = member_client.post(reverse("members:data_export"))

    assert response.status_code == 200
    assert not AuditEntry.objects.exists()


def test_erasure_by_staff_writes_one_entry(admin_user, program):
    member = MemberFactory(first_name="Zephyrine")

    member_services.member_erase(member=member, by=admin_user)

    entry = only_entry()
    assert (entry.actor, entry.action, entry.object_repr) == (
        admin_user,
        AuditAction.MEMBER_ERASED,
        member.member_number,
    )


def test_erasing_a_member_twice_is_refused_and_writes_no_second_entry(admin_user, program):
    from members.errors import AlreadyErased

    member = MemberFactory()
    member_services.member_erase(member=member, by=admin_user)

    with pytest.raises(AlreadyErased):
        member_services.member_erase(member=member, by=admin_user)

    assert AuditEntry.objects.count() == 1
