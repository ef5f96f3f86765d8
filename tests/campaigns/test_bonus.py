"""A campaign's bonus offer (issue 15 §2): extra points, fixed or a multiplier, on purchases
within the days after a recipient's own send time, through the earning engine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from campaigns import bonus
from campaigns.admin import CampaignForm
from campaigns.models import BonusKind, Campaign, CampaignStatus, Recipient, RecipientStatus
from campaigns.selectors import campaign_bonus_totals
from loyalty import earning, reasons
from loyalty.models import EntryKind, LedgerEntry, PointsAccount, ProgramSettings, Purchase
from loyalty.services import purchase_record, purchase_refund
from tests.api.conftest import client_for
from tests.factories import MemberFactory, PartnerFactory

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture
def partner(db):
    return PartnerFactory(name="Bakkerij")


@pytest.fixture
def sent_campaign(campaign_of):
    """A campaign with a bonus offer that was sent: `sent_campaign(**fields)`."""

    def make(**fields):
        fields.setdefault("name", "Spring")
        fields.setdefault("bonus_kind", BonusKind.FIXED)
        if fields["bonus_kind"] == BonusKind.FIXED:
            fields.setdefault("bonus_points", 50)
        now = timezone.now()
        fields.setdefault("status", CampaignStatus.SENT)
        fields.setdefault("started_at", now - 3 * DAY)
        fields.setdefault("finished_at", now - 3 * DAY + dt.timedelta(hours=1))
        return campaign_of(**fields)

    return make


def recipient(campaign, member, *, status=RecipientStatus.SENT, sent_at=None):
    return Recipient.objects.create(
        campaign=campaign,
        member=member,
        email=member.email,
        language=member.language,
        status=status,
        sent_at=sent_at or (timezone.now() - 2 * DAY if status == RecipientStatus.SENT else None),
    )


def buy(partner, member, external_id="P1", amount="25.00", at=None):
    return purchase_record(
        partner=partner, external_id=external_id, member=member, amount=amount, purchased_at=at
    ).purchase


def bonus_entries(member=None):
    entries = LedgerEntry.objects.filter(kind=EntryKind.BONUS).order_by("pk")
    if member is not None:
        entries = entries.filter(account__member=member)
    return list(entries)


# --- who earns it ------------------------------------------------------------------------


def test_a_fixed_bonus_is_its_own_ledger_entry_with_the_campaigns_reason(
    program, partner, sent_campaign
):
    member = MemberFactory()
    campaign = sent_campaign(bonus_points=50)
    recipient(campaign, member)

    purchase = buy(partner, member)

    [entry] = bonus_entries()
    assert (entry.points, entry.source, entry.purchase_id) == (50, "campaign", purchase.pk)
    assert entry.reason_key == reasons.CAMPAIGN_BONUS == "Bonus: %(campaign)s"
    assert entry.reason_params == {"campaign": "Spring", "campaign_id": campaign.pk}
    assert purchase.points_earned == 25  # the purchase's own points stay apart
    assert PointsAccount.objects.get(member=member).balance == 75
    [shown] = purchase.earning_breakdown["bonuses"]
    assert shown["points"] == 50 and shown["reference"] == f"campaign:{campaign.pk}"
    assert shown["reason_key"] == reasons.CAMPAIGN_BONUS


@pytest.mark.parametrize(
    ("multiplier", "amount", "extra"),
    [("2.00", "25.00", 25), ("1.50", "25.00", 12), ("3.00", "10.00", 20)],
)
def test_a_multiplier_bonus_adds_the_purchases_points_times_the_rest(
    program, partner, sent_campaign, multiplier, amount, extra
):
    member = MemberFactory()
    campaign = sent_campaign(bonus_kind=BonusKind.MULTIPLIER, bonus_multiplier=multiplier)
    recipient(campaign, member)

    buy(partner, member, amount=amount)

    assert [entry.points for entry in bonus_entries()] == [extra]  # rounded down


def test_only_purchases_within_the_window_after_the_members_own_send_earn_it(
    program, partner, sent_campaign
):
    now = timezone.now()
    sent_at = now - 10 * DAY
    hour = dt.timedelta(hours=1)
    campaign = sent_campaign(bonus_days=7, started_at=sent_at - hour, finished_at=sent_at + hour)
    member = MemberFactory()
    recipient(campaign, member, sent_at=sent_at)

    buy(partner, member, "before", at=sent_at - dt.timedelta(minutes=1))
    buy(partner, member, "at-send", at=sent_at)
    buy(partner, member, "last-minute", at=sent_at + 7 * DAY - dt.timedelta(minutes=1))
    buy(partner, member, "after", at=sent_at + 7 * DAY)
    buy(partner, member, "now", at=now)

    with_bonus = {entry.purchase.external_id for entry in bonus_entries()}
    assert with_bonus == {"at-send", "last-minute"}


@pytest.mark.parametrize(
    "status",
    [
        RecipientStatus.HOLDOUT,
        RecipientStatus.SKIPPED,
        RecipientStatus.FAILED,
        RecipientStatus.PENDING,
    ],
)
def test_the_holdout_and_who_was_not_mailed_never_earn_it(program, partner, sent_campaign, status):
    campaign = sent_campaign()
    member, mailed = MemberFactory(), MemberFactory()
    recipient(campaign, member, status=status)
    recipient(campaign, mailed)

    buy(partner, member, "not-mailed")
    buy(partner, mailed, "mailed")
    buy(partner, MemberFactory(), "not-in-the-audience")

    assert [entry.purchase.external_id for entry in bonus_entries()] == ["mailed"]


def test_two_campaigns_stack_with_one_bonus_each(program, partner, sent_campaign):
    member = MemberFactory()
    spring = sent_campaign(name="Spring", bonus_points=50)
    double = sent_campaign(name="Double", bonus_kind=BonusKind.MULTIPLIER, bonus_multiplier="2")
    recipient(spring, member)
    recipient(double, member)

    buy(partner, member, "first")
    buy(partner, member, "second", amount="10.00")

    got = [(e.purchase.external_id, e.reason_params["campaign"], e.points) for e in bonus_entries()]
    assert sorted(got) == [
        ("first", "Double", 25),
        ("first", "Spring", 50),
        ("second", "Double", 10),
        ("second", "Spring", 50),
    ]


def test_a_minimum_amount_leaves_smaller_purchases_out(program, partner, sent_campaign):
    member = MemberFactory()
    recipient(sent_campaign(bonus_min_amount=Decimal("20.00")), member)

    buy(partner, member, "small", amount="19.99")
    buy(partner, member, "enough", amount="20.00")

    assert [entry.purchase.external_id for entry in bonus_entries()] == ["enough"]


def test_a_campaign_still_sending_and_a_cancelled_one_pay_their_mailed_recipients(
    program, partner, sent_campaign
):
    member = MemberFactory()
    sending = sent_campaign(name="Sending", status=CampaignStatus.SENDING, finished_at=None)
    cancelled = sent_campaign(name="Cancelled", status=CampaignStatus.CANCELLED)
    recipient(sending, member)
    recipient(cancelled, member)

    buy(partner, member)

    assert sorted(e.reason_params["campaign"] for e in bonus_entries()) == [
        "Cancelled",
        "Sending",
    ]


def test_a_purchase_posted_over_30_days_after_the_offer_closed_does_not_earn_it(
    program, partner, sent_campaign, monkeypatch
):
    """Made within the offer's window but posted too late: refused however long ago the
    offers were read (here: while the offer still took late purchases)."""
    now = timezone.now()
    member = MemberFactory()
    campaign = sent_campaign(bonus_days=7, started_at=now - 45 * DAY, finished_at=now - 45 * DAY)
    recipient(campaign, member, sent_at=now - 45 * DAY)
    with monkeypatch.context() as earlier:
        earlier.setattr(bonus.timezone, "now", lambda: now - 10 * DAY)
        assert [offer.campaign_id for offer in bonus.live_bonuses()] == [campaign.pk]
    [offer] = bonus.live_bonuses()  # kept in memory: nothing changed since
    assert offer.takes_late_purchases(offer.ends + bonus.LATE_PURCHASES)

    buy(partner, member, "late", at=now - 44 * DAY)

    assert bonus_entries() == []


def test_a_new_offer_is_seen_by_the_next_purchase(program, partner, sent_campaign):
    """The cached offers are forgotten when a campaign is saved (here: the first one)."""
    member = MemberFactory()
    buy(partner, member, "before")  # caches "no offer"
    assert bonus.live_bonuses() == ()

    recipient(sent_campaign(), member)
    buy(partner, member, "after")

    assert [entry.purchase.external_id for entry in bonus_entries()] == ["after"]


# --- what it costs the purchase path --------------------------------------------------------


def _queries_of_a_purchase(partner, member, external_id) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        buy(partner, member, external_id)
    return [query["sql"] for query in queries.captured_queries]


def test_without_a_live_offer_the_provider_costs_no_query(
    program, partner, sent_campaign, campaign_of
):
    member = MemberFactory()
    campaign_of(name="No offer", status=CampaignStatus.SENT, started_at=timezone.now())
    long_ago = timezone.now() - 90 * DAY
    recipient(  # an offer whose window closed long ago is not live
        sent_campaign(name="Old", started_at=long_ago, finished_at=long_ago), member
    )
    buy(partner, member, "warm")  # the caches (terms, program, offers)

    with_provider = _queries_of_a_purchase(partner, member, "with")
    earning.unregister_bonus_provider(bonus.campaign_bonuses)
    try:
        without_provider = _queries_of_a_purchase(partner, member, "without")
    finally:
        earning.register_bonus_provider(bonus.campaign_bonuses)

    assert len(with_provider) == len(without_provider)
    assert not any("campaigns_" in sql for sql in with_provider)
    assert bonus_entries() == []


def test_with_a_live_offer_a_purchase_costs_one_indexed_query_more(program, partner, sent_campaign):
    member = MemberFactory()
    recipient(sent_campaign(), member)
    buy(partner, member, "warm")

    with_provider = _queries_of_a_purchase(partner, member, "with")
    earning.unregister_bonus_provider(bonus.campaign_bonuses)
    try:
        without_provider = _queries_of_a_purchase(partner, member, "without")
    finally:
        earning.register_bonus_provider(bonus.campaign_bonuses)

    campaign_queries = [sql for sql in with_provider if "campaigns_" in sql]
    assert len(with_provider) == len(without_provider) + 1
    assert len(campaign_queries) == 1 and "campaigns_recipient" in campaign_queries[0]
    assert len(bonus_entries()) == 2  # warm and with


# --- the partner API -----------------------------------------------------------------------


def test_the_purchase_endpoint_and_the_batch_endpoint_apply_it(program, sent_campaign):
    shop = PartnerFactory(name="Webshop")
    api = client_for(shop)
    member = MemberFactory()
    recipient(sent_campaign(bonus_points=40), member)

    one = api.post(
        "/api/v1/purchases/",
        {"external_id": "A-1", "member_number": member.member_number, "amount": "10.00"},
        format="json",
    )
    batch = api.post(
        "/api/v1/purchases/batch/",
        {
            "purchases": [
                {"external_id": f"B-{n}", "member_number": member.member_number, "amount": "5.00"}
                for n in range(3)
            ]
        },
        format="json",
    )

    assert one.status_code == 201, one.content
    assert one.json()["balance"] == 10 + 40
    assert one.json()["purchase"]["breakdown"]["bonuses"][0]["points"] == 40
    assert batch.status_code == 200 and batch.json()["created"] == 3
    assert sorted(e.purchase.external_id for e in bonus_entries()) == ["A-1", "B-0", "B-1", "B-2"]
    assert PointsAccount.objects.get(member=member).balance == 10 + 40 + 3 * (5 + 40)


# --- refunds -------------------------------------------------------------------------------


def test_a_refund_reverses_the_bonus_in_proportion_and_the_cost_nets_it_out(
    program, partner, sent_campaign
):
    member = MemberFactory()
    campaign = sent_campaign(bonus_kind=BonusKind.MULTIPLIER, bonus_multiplier="2.00")
    recipient(campaign, member)
    purchase = buy(partner, member, amount="100.00")  # 100 points + a bonus of 100

    purchase_refund(purchase=purchase, amount="25.00")
    assert PointsAccount.objects.get(member=member).balance == 200 - 25 - 25
    purchase_refund(purchase=Purchase.objects.get(pk=purchase.pk), amount="75.00")

    reversals = LedgerEntry.objects.filter(
        kind=EntryKind.REVERSAL, reason_key=reasons.CAMPAIGN_BONUS
    ).order_by("pk")
    assert [entry.points for entry in reversals] == [-25, -75]
    assert all(entry.reason_params["campaign_id"] == campaign.pk for entry in reversals)
    assert PointsAccount.objects.get(member=member).balance == 0
    purchase.refresh_from_db()
    assert purchase.points_reversed == 100  # the purchase's own points
    assert campaign_bonus_totals(campaign).points == 0


def test_a_refund_does_not_take_an_expired_bonus_from_other_points(program, partner, sent_campaign):
    member = MemberFactory()
    recipient(sent_campaign(bonus_points=40), member)
    purchase = buy(partner, member, amount="100.00")
    [lot] = bonus_entries()
    LedgerEntry.objects.filter(pk=lot.pk).update(remaining_points=0, expired_points=40)
    PointsAccount.objects.filter(member=member).update(balance=100)

    purchase_refund(purchase=purchase, amount="50.00")

    assert PointsAccount.objects.get(member=member).balance == 50  # only the purchase's half
    assert not LedgerEntry.objects.filter(
        kind=EntryKind.REVERSAL, reason_key=reasons.CAMPAIGN_BONUS
    ).exists()


# --- words and figures ---------------------------------------------------------------------


def test_the_ledger_reason_is_read_in_the_readers_language(program, partner, sent_campaign):
    member = MemberFactory()
    recipient(sent_campaign(name="Lentefeest"), member)
    buy(partner, member)
    [entry] = bonus_entries()

    with translation.override("en"):
        assert entry.reason_text == "Bonus: Lentefeest"
    with translation.override("nl"):
        dutch = gettext("Bonus: %(campaign)s") % {"campaign": "Lentefeest"}
        assert entry.reason_text == dutch == "Bonuspunten: Lentefeest"
    # The stored text: the program's default language (English in these tests).
    assert entry.reason == "Bonus: Lentefeest"
    # A rename later does not change what the member was told then.
    Campaign.objects.filter(name="Lentefeest").update(name="Zomer")
    entry.refresh_from_db()
    with translation.override("en"):
        assert entry.reason_text == "Bonus: Lentefeest"


def test_the_portal_history_and_the_admin_purchase_page_show_the_bonus(
    program, partner, sent_campaign, admin_client, client
):
    from tests.factories import UserFactory

    user = UserFactory(email="noor@example.com")
    member = MemberFactory(user=user, email="noor@example.com", language="en")
    recipient(sent_campaign(name="Lentefeest", bonus_points=50), member)
    purchase = buy(partner, member)
    client.force_login(user)

    portal = client.get(reverse("points:history"), HTTP_ACCEPT_LANGUAGE="en")
    admin = admin_client.get(reverse("admin:loyalty_purchase_change", args=[purchase.pk]))

    assert portal.status_code == admin.status_code == 200
    assert "Bonus: Lentefeest" in portal.content.decode()
    page = admin.content.decode()
    assert "Bonus: Lentefeest: 50" in page


def test_the_cost_selector_counts_points_at_the_programs_value(program, partner, sent_campaign):
    ProgramSettings.objects.filter(pk=program.pk).update(point_value_eur=Decimal("0.0125"))
    spring, other = sent_campaign(name="Spring", bonus_points=30), sent_campaign(name="Other")
    for member in MemberFactory.create_batch(3):
        recipient(spring, member)
        buy(partner, member, f"P-{member.pk}")

    totals = campaign_bonus_totals(spring)

    assert (totals.points, totals.cost) == (90, Decimal("1.125"))
    assert campaign_bonus_totals(other).points == 0


# --- the admin form ------------------------------------------------------------------------


def _form(message, **bonus_fields) -> CampaignForm:
    return CampaignForm(
        data={
            "name": "Spring",
            "message": message.pk,
            "segments": ["champions"],
            "holdout_percent": 10,
            **bonus_fields,
        }
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"bonus_kind": "fixed"}, "bonus_points"),
        ({"bonus_kind": "fixed", "bonus_points": "0"}, "bonus_points"),
        ({"bonus_kind": "multiplier"}, "bonus_multiplier"),
        ({"bonus_kind": "multiplier", "bonus_multiplier": "1.00"}, "bonus_multiplier"),
        ({"bonus_kind": "multiplier", "bonus_multiplier": "0.50"}, "bonus_multiplier"),
        ({"bonus_kind": "none", "bonus_points": "10"}, "bonus_kind"),
        ({"bonus_kind": "fixed", "bonus_points": "10", "bonus_days": "0"}, "bonus_days"),
        (
            {"bonus_kind": "fixed", "bonus_points": "10", "bonus_min_amount": "0"},
            "bonus_min_amount",
        ),
    ],
)
def test_the_form_names_the_field_of_a_bonus_that_does_not_fit(program, message, fields, field):
    form = _form(message, **fields)

    assert not form.is_valid()
    assert field in form.errors


def test_the_form_saves_an_offer_and_a_campaign_without_one(program, message):
    with_offer = _form(message, bonus_kind="multiplier", bonus_multiplier="2.00", bonus_days="3")
    without = _form(message)

    assert with_offer.is_valid(), with_offer.errors
    assert without.is_valid(), without.errors
    saved = with_offer.save()
    plain = without.save()
    assert (saved.bonus_kind, saved.bonus_multiplier, saved.bonus_days) == (
        "multiplier",
        Decimal("2.00"),
        3,
    )
    assert (plain.bonus_kind, plain.bonus_days) == ("none", 7)


def test_the_campaign_page_shows_the_bonus_points_and_their_cost(
    program, partner, sent_campaign, admin_client
):
    campaign = sent_campaign(bonus_points=100)
    recipient(campaign, MemberFactory())
    buy(partner, Recipient.objects.get().member)

    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    assert page.status_code == 200
    assert "100 points / €1.00" in page.content.decode()


@pytest.mark.postgres
def test_the_cost_reads_the_ledgers_partial_index_of_bonus_entries(program, sent_campaign):
    """On PostgreSQL, with the planner told to avoid table scans (the ledger has millions)."""
    campaign = sent_campaign()
    entries = LedgerEntry.objects.filter(
        reason_key=reasons.CAMPAIGN_BONUS, reason_params__campaign_id=campaign.pk
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        assert "entry_campaign_bonus_idx" in entries.explain()
