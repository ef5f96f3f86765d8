"""Domain events and bonus providers: the extension points later apps subscribe to."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from loyalty import earning, events
from loyalty.models import EntryKind, LedgerEntry, ProgramSettings, Purchase
from loyalty.services import points_credit, points_expire, purchase_record
from members.services import consent_change, member_enrol
from rewards import services as rewards
from tests.factories import (
    EarningRuleFactory,
    MemberFactory,
    RewardFactory,
    TermsVersionFactory,
    TierFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def told():
    """Every domain event, as (name, member id, data), in the order the services emitted them."""
    seen: list[tuple[str, int | None, dict]] = []

    def record(event: events.DomainEvent) -> None:
        seen.append((event.name, event.member_id, event.data))

    events.subscribe(events.ANY, record)
    yield seen
    events.unsubscribe(events.ANY, record)


def names(seen) -> list[str]:
    return [name for name, _member, _data in seen]


def test_a_purchase_that_reaches_a_tier_tells_points_earned_then_tier_changed(
    program, partner, told
):
    TierFactory(name="Silver", rank=1, threshold=Decimal("50"))
    member = MemberFactory()

    purchase_record(partner=partner, external_id="E1", member=member, amount="80.00")

    assert names(told) == ["points.earned", "tier.changed"]
    (_, member_id, earned), (_, _, tier) = told
    assert member_id == member.pk
    assert (earned["points"], earned["balance"], earned["kind"]) == (80, 80, "earn")
    assert earned["purchase_id"] == Purchase.objects.get().pk
    assert (tier["from_tier"], tier["to_tier"], tier["reason"]) == (None, "Silver", "upgrade")


def test_redeeming_and_cancelling_tell_what_happened_to_points_and_reward(program, told):
    member = MemberFactory()
    reward = RewardFactory(kind="product", points_cost=100)
    points_credit(member=member, points=150, reason="Welcome")
    redemption = rewards.reward_redeem(member=member, reward=reward)
    rewards.redemption_cancel(redemption=redemption)

    assert names(told) == [
        "points.earned",
        "points.redeemed",
        "reward.redeemed",
        "points.reversed",
        "redemption.cancelled",
    ]
    assert told[2][2] == {
        "redemption_id": redemption.pk,
        "reward_id": reward.pk,
        "points": 100,
        "status": "requested",
    }
    assert told[4][2]["points_returned"] == 100


def test_expiry_tells_points_expired(program, told):
    program.points_expiry_months = 1
    program.save()
    member = MemberFactory()
    with time_machine.travel(timezone.now() - dt.timedelta(days=60)):
        points_credit(member=member, points=40, reason="Old")
    told.clear()

    points_expire()

    assert told == [
        (
            "points.expired",
            member.pk,
            {
                "entry_id": LedgerEntry.objects.get(kind=EntryKind.EXPIRE).pk,
                "kind": "expire",
                "points": -40,
                "balance": 0,
                "source": "system",
                "purchase_id": None,
            },
        )
    ]


def test_enrolment_and_a_consent_change_are_told(program, told):
    TermsVersionFactory()
    member = member_enrol(
        email="ida@example.com",
        birth_date=dt.date(1990, 5, 5),
        password="a-long-secret-phrase",
        accepted_terms=True,
        marketing_consent=False,
    )
    consent_change(member=member, granted=True, source="portal")

    assert names(told) == ["consent.changed", "member.enrolled", "consent.changed"]
    assert told[1][2]["member_number"] == member.member_number
    assert told[2][2] == {"channel": "email", "granted": True, "source": "portal"}


def test_a_subscriber_runs_inside_the_change_so_its_failure_undoes_the_change(program, partner):
    def refuse(event):
        raise RuntimeError("the webhook outbox could not be written")

    events.subscribe("points.earned", refuse)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            purchase_record(partner=partner, external_id="E2", member=MemberFactory(), amount="9")
    finally:
        events.unsubscribe("points.earned", refuse)

    assert not Purchase.objects.exists() and not LedgerEntry.objects.exists()


def test_an_unknown_event_name_is_refused():
    with pytest.raises(ValueError):
        events.emit("points.stolen", member_id=None)
    with pytest.raises(ValueError):
        events.subscribe("points.stolen", lambda event: None)


# --- bonus providers -----------------------------------------------------------------------


def test_a_registered_bonus_provider_adds_its_own_ledger_entry(program, partner, told):
    member = MemberFactory()

    def double_week(facts: earning.PurchaseFacts):
        assert facts.member_id == member.pk and facts.points == 25
        yield earning.Bonus(points=facts.points, label="Double points week", reference="c:1")

    earning.register_bonus_provider(double_week)
    try:
        result = purchase_record(partner=partner, external_id="B1", member=member, amount="25.00")
    finally:
        earning.unregister_bonus_provider(double_week)

    entries = list(LedgerEntry.objects.order_by("pk").values_list("kind", "points", "reason"))
    assert entries == [("earn", 25, "Aankoop B1"), ("bonus", 25, "Double points week")]
    assert result.purchase.points_earned == 25
    assert result.purchase.earning_breakdown["bonuses"] == [
        {"points": 25, "label": "Double points week", "reference": "c:1"}
    ]
    assert names(told) == ["points.earned", "points.earned"]


def test_without_providers_a_preview_and_a_purchase_earn_no_bonus(program, partner):
    result = purchase_record(partner=partner, external_id="B2", member=MemberFactory(), amount="5")

    assert result.purchase.earning_breakdown["bonuses"] == []
    assert LedgerEntry.objects.get().kind == "earn"


# --- the purchase path ---------------------------------------------------------------------


def test_recording_a_purchase_with_lines_costs_three_statements_on_postgresql(
    program, partner, django_assert_num_queries
):
    """Account lock, rolling spend, and one statement writing the purchase, its lines, the
    ledger entry and the account on PostgreSQL; on SQLite one per table (six in all); plus
    the savepoint that makes a concurrent duplicate recoverable. The earning rules and tiers
    are in memory; a new purchase needs no duplicate check (the unique constraint finds a
    repeat)."""
    TierFactory(name="Bronze", rank=1, threshold=Decimal("0"))
    TierFactory(name="Silver", rank=2, threshold=Decimal("500"))
    member = MemberFactory()
    purchase_record(partner=partner, external_id="W", member=member, amount="1.00")  # caches

    with django_assert_num_queries((3 if connection.vendor == "postgresql" else 6) + 2):
        purchase_record(
            partner=partner,
            external_id="Q1",
            member=member,
            amount="30.00",
            lines=[{"amount": "10.00", "category": "shoes"}, {"amount": "20.00"}],
        )


def test_a_member_in_the_top_tier_costs_no_rolling_figure(
    program, partner, django_assert_num_queries
):
    TierFactory(name="Bronze", rank=1, threshold=Decimal("0"))
    member = MemberFactory()
    purchase_record(partner=partner, external_id="W", member=member, amount="1.00")

    # lock, then purchase (no lines), ledger entry, account: one statement on PostgreSQL
    with django_assert_num_queries((2 if connection.vendor == "postgresql" else 4) + 2):
        purchase_record(partner=partner, external_id="Q1", member=member, amount="30.00")


def test_a_new_earning_rule_or_tier_is_seen_by_the_next_purchase(program, partner):
    member = MemberFactory()
    purchase_record(partner=partner, external_id="A", member=member, amount="10.00")  # caches
    EarningRuleFactory(name="Dubbel", multiplier=Decimal("2"))
    TierFactory(name="Goud", rank=1, threshold=Decimal("0"), multiplier=Decimal("1.5"))

    result = purchase_record(partner=partner, external_id="B", member=member, amount="10.00")

    assert result.tier == "Goud"  # the upgrade is seen
    assert result.purchase.earning_breakdown["lines"][0]["rule"] == "Dubbel"


def test_program_settings_are_cached_and_a_save_is_seen_at_once(program, django_assert_num_queries):
    ProgramSettings.load()
    with django_assert_num_queries(0):
        assert ProgramSettings.load().name == "Klantenclub"

    program.name = "Spaarclub"
    program.save()

    assert ProgramSettings.load().name == "Spaarclub"
