"""GDPR erasure leaves the member's data in no table; the export holds everything we keep."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import SuppressedAddress
from loyalty.models import PointsAccount, Tier
from loyalty.services import points_credit, purchase_record, purchase_refund, tier_recalculate
from members import services
from members.models import InvitationImport, Member, MemberStatus
from rewards.models import Redemption, Reward
from rewards.services import redemption_cancel, reward_redeem
from tests.factories import (
    CampaignFactory,
    MemberWithLoginFactory,
    PartnerFactory,
    RecipientFactory,
    RewardFactory,
    SuppressedAddressFactory,
    TierFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

FIRST = "Zephyrine"
LAST = "Quäckenbosch"  # not ASCII: the admin writes it into JSON as "Qu\u00e4ckenbosch"
EMAIL = "zephyrine.q@example.org"
PASSWORD = "stroopwafels-every-day-7"


def tables_holding(*texts: str) -> dict[str, list[str]]:
    """Every table and column whose value contains one of `texts` (any case, also as JSON
    escapes it), found by reading all tables the database has, so new tables are covered."""
    wanted = {form.lower() for text in texts for form in (text, json.dumps(text)[1:-1])}
    found: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            columns = [column[0] for column in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(value, memoryview | bytes):
                        value = bytes(value).decode("utf-8", errors="replace")
                    text = str(value).lower()
                    if any(form in text for form in wanted):
                        found.setdefault(table, []).append(f"{column}={str(value)[:120]}")
    return found


def admin_post_unchanged(client, url: str, **changes) -> None:
    """Save an admin change form as the page shows it, with `changes`, like staff would."""
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data: dict = {"_save": "Save"}
    for name in form.fields:
        value = changes.get(name, form[name].value())
        if value is None or value is False:
            continue
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
    assert response.status_code == 302, getattr(response, "context", {}) and (
        response.context["adminform"].form.errors
    )


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def invited_member(program, admin_user, media) -> Member:
    """Invited by an import whose file has the member twice (the second row is an error)."""
    csv = (
        "email,first_name,last_name,language\n"
        f"{EMAIL},{FIRST},{LAST},en\n"
        "other.person@example.org,Other,Person,nl\n"
        f"{EMAIL.upper()},{FIRST},{LAST},en\n"
    )
    job = InvitationImport.objects.create(
        file=SimpleUploadedFile("invitations.csv", csv.encode()), created_by=admin_user
    )
    services.invitation_import_run(job=job)
    member = Member.objects.get(email=EMAIL)
    member.user = UserFactory(email=EMAIL, first_name=FIRST, last_name=LAST, password=PASSWORD)
    member.status = MemberStatus.ACTIVE
    member.save()
    return member


def test_erasure_leaves_the_members_name_and_address_in_no_column_of_any_table(
    client, admin_client, admin_user, invited_member
):
    member = invited_member
    purchase = purchase_record(
        partner=PartnerFactory(name="Webshop"), external_id="W1", member=member, amount="80.00"
    )
    purchase_refund(purchase=purchase.purchase, amount="10.00", created_by=admin_user)
    points_credit(member=member, points=500, reason="Welcome")
    redemption = reward_redeem(member=member, reward=RewardFactory(kind="product"))
    services.consent_set(member=member, granted=True, source="enrolment")
    # Staff edit the member, the login and the redemption in the admin: history with the name.
    admin_post_unchanged(
        admin_client, reverse("admin:members_member_change", args=[member.pk]), first_name=FIRST
    )
    admin_post_unchanged(admin_client, reverse("admin:members_user_change", args=[member.user_id]))
    saved = admin_client.post(
        reverse("admin:rewards_redemption_change", args=[redemption.pk]), {"_save": "Save"}
    )
    assert saved.status_code == 302
    # ... and a note elsewhere that names the member.
    LogEntry.objects.log_actions(
        user_id=admin_user.pk,
        queryset=[redemption.reward],
        action_flag=CHANGE,
        change_message=f"Asked by {FIRST} {LAST} ({EMAIL}) to restock.",
        single_object=True,
    )
    # Campaigns: a message sent (with a server error recorded on an earlier attempt), one
    # still waiting, and the address on the suppression list after a complaint.
    sent = RecipientFactory(
        member=member,
        status="sent",
        sent_at=timezone.now(),
        last_error=f"450 <{EMAIL.upper()}> mailbox busy",
    )
    waiting = RecipientFactory(member=member, campaign=CampaignFactory(), status="pending")
    SuppressedAddressFactory(email=EMAIL.upper(), reason="complaint")
    SuppressedAddressFactory(email="someone.else@example.org", reason="complaint")
    # The member logs in once with a wrong password (login log) and once rightly (session).
    client.post(reverse("members:login"), {"username": EMAIL, "password": "wrong-password"})
    client.force_login(member.user)
    before = tables_holding(FIRST, LAST, EMAIL)
    assert "django_admin_log" in before and "members_invitationimport" in before
    assert {"campaigns_recipient", "campaigns_suppressedaddress"} <= before.keys()

    services.member_erase(member=member, by=admin_user)

    assert tables_holding(FIRST, LAST, EMAIL) == {}
    job = InvitationImport.objects.get()
    with job.file.open("rb") as handle:
        stored = handle.read().decode()
    assert EMAIL not in stored.lower() and FIRST not in stored and LAST not in stored
    assert "other.person@example.org,Other,Person,nl" in stored
    assert len(stored.splitlines()) == 4  # the lines stay, so the report's line numbers match
    assert [(row["row"], row["email"]) for row in job.errors] == [(4, "")]
    assert client.get(reverse("points:dashboard")).status_code == 302  # the session is gone
    # The campaign rows stay for the results, under the placeholder; the one waiting is skipped.
    sent.refresh_from_db()
    waiting.refresh_from_db()
    member.refresh_from_db()
    assert member.email == f"erased-{member.member_number}@erased.invalid"
    assert (sent.status, sent.email) == ("sent", member.email)
    assert sent.last_error == f"450 <{member.email}> mailbox busy"
    assert (waiting.status, waiting.skip_reason) == ("skipped", "inactive")
    assert list(SuppressedAddress.objects.values_list("email", flat=True)) == [
        "someone.else@example.org"
    ]


def test_erasure_renames_the_admin_history_of_the_members_objects(admin_user, invited_member):
    member = invited_member
    points_credit(member=member, points=500, reason="Bonus")
    redemption = reward_redeem(
        member=member, reward=RewardFactory(kind="product", name_en="Cake", name_nl="Taart")
    )
    for obj in (member, member.user, redemption):
        LogEntry.objects.log_actions(
            user_id=admin_user.pk,
            queryset=[obj],
            action_flag=CHANGE,
            change_message=json.dumps([{"changed": {"fields": ["Status"]}}]),
            single_object=True,
        )

    services.member_erase(member=member, by=admin_user)

    member.refresh_from_db()
    history = {
        entry.content_type.model: entry
        for entry in LogEntry.objects.filter(user=admin_user).select_related("content_type")
    }
    assert history["member"].object_repr == str(member)
    assert history["user"].object_repr == member.email
    assert history["redemption"].object_repr == str(Redemption.objects.get(pk=redemption.pk))
    assert history["redemption"].change_message == json.dumps([{"changed": {"fields": ["Status"]}}])
    assert all(member.member_number in history[name].object_repr for name in ("member",))


def test_erasure_forgets_the_login_attempts_with_the_members_address(client, invited_member):
    from django.apps import apps

    if not apps.is_installed("axes"):
        pytest.skip("django-axes is not installed")
    from axes.models import AccessAttempt

    client.post(reverse("members:login"), {"username": EMAIL, "password": "wrong-password"})
    assert AccessAttempt.objects.filter(username__iexact=EMAIL).exists()

    services.member_erase(member=invited_member)

    assert not AccessAttempt.objects.filter(username__iexact=EMAIL).exists()


# --- the data export ------------------------------------------------------------------------


def exported(member) -> dict:
    with zipfile.ZipFile(io.BytesIO(services.member_data_export(member=member))) as archive:
        return json.loads(archive.read("personal-data.json"))


def test_the_export_holds_each_refund_of_a_purchase(invited_member, admin_user):
    purchase = purchase_record(
        partner=PartnerFactory(name="Webshop"), external_id="W1", member=invited_member, amount="80"
    )
    refund = purchase_refund(purchase=purchase.purchase, amount="20.00", external_id="R1")

    (exported_purchase,) = exported(invited_member)["purchases"]

    (exported_refund,) = exported_purchase["refunds"]
    assert exported_refund["id"] == refund.pk and exported_refund["external_id"] == "R1"
    assert Decimal(exported_refund["amount"]) == Decimal("20.00")
    assert exported_refund["points_reversed"] == refund.points_reversed
    assert exported_refund["points_not_recovered"] == refund.points_not_recovered
    assert exported_refund["created_at"]


def test_the_export_holds_the_tier_changes(invited_member):
    TierFactory(name="Silver", rank=1, threshold=Decimal("0"))
    TierFactory(name="Gold", rank=2, threshold=Decimal("50"))
    purchase_record(partner=PartnerFactory(), external_id="W1", member=invited_member, amount="100")
    account = PointsAccount.objects.get(member=invited_member)
    tier_recalculate(account=account, allow_downgrade=False, tiers=list(Tier.objects.all()))

    changes = exported(invited_member)["tier_changes"]

    assert changes and changes[-1]["to_tier"] == "Gold"
    assert {"changed_at", "from_tier", "rolling_12_month_figure", "reason"} <= set(changes[-1])


def test_the_export_holds_the_invitation_without_the_staff_members_name(invited_member):
    data = exported(invited_member)

    invitation = data["invitation"]
    assert invitation["invited_at"] and invitation["invited_by"] == "staff"
    assert {"sent_at", "accepted_at"} <= set(invitation)
    assert "admin" not in json.dumps(invitation)


def test_the_export_holds_the_login_account(invited_member, client):
    client.force_login(invited_member.user)
    client.get(reverse("points:dashboard"))
    user = invited_member.user
    user.refresh_from_db()

    account = exported(invited_member)["login_account"]

    assert account["email"] == EMAIL and account["is_active"] is True
    assert abs(dt.datetime.fromisoformat(account["date_joined"]) - user.date_joined) < dt.timedelta(
        milliseconds=1
    )
    assert abs(dt.datetime.fromisoformat(account["last_login"]) - user.last_login) < dt.timedelta(
        milliseconds=1
    )


def test_the_export_holds_a_redemptions_cancellation(invited_member, admin_user):
    points_credit(member=invited_member, points=1000, reason="Welcome")
    reward = RewardFactory(kind="product", name_en="Cake")
    redemption = reward_redeem(member=invited_member, reward=reward)
    redemption_cancel(redemption=redemption, by=admin_user)

    (exported_redemption,) = exported(invited_member)["rewards"]

    assert exported_redemption["status"] == "cancelled"
    assert exported_redemption["cancelled_at"]
    assert exported_redemption["status_changed_by"] == "staff"
    assert exported_redemption["points_returned"] == Reward.objects.get(pk=reward.pk).points_cost


def test_erasure_deletes_the_logins_sessions_after_the_commit(
    client, program, django_capture_on_commit_callbacks
):
    from django.contrib.sessions.models import Session

    member = MemberWithLoginFactory(email="sam@example.com")
    client.force_login(member.user)
    other = MemberWithLoginFactory(email="kim@example.com")
    other_client = Client()
    other_client.force_login(other.user)
    assert Session.objects.count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        services.member_erase(member=member)

    [left] = Session.objects.all()
    assert str(left.get_decoded()["_auth_user_id"]) == str(other.user_id)
    assert other_client.get(reverse("points:dashboard")).status_code == 200


def test_the_export_holds_the_campaign_messages_and_the_links_clicked(invited_member):
    from campaigns.services import recipient_clicked

    campaign = CampaignFactory(name="Spring offer")
    recipient = RecipientFactory(
        member=invited_member, campaign=campaign, status="sent", sent_at=timezone.now()
    )
    recipient_clicked(recipient_id=recipient.pk, url="https://shop.example/spring")
    RecipientFactory(member=invited_member, status="holdout")

    messages = exported(invited_member)["campaign_messages"]

    assert [message["status"] for message in messages] == ["sent", "holdout"]
    first = messages[0]
    assert first["campaign"] == "Spring offer" and first["email"] == EMAIL
    assert first["opened_at"] and first["clicked_at"]  # a click counts as an open
    assert [link["url"] for link in first["links_clicked"]] == ["https://shop.example/spring"]
    assert messages[1]["links_clicked"] == []
