"""Many purchases at once (`purchases_record_batch`): the same outcome as one by one, in a
constant number of statements, safe against concurrent posts of the same ids."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from loyalty.models import LedgerEntry, PointsAccount, Purchase, TierChange
from loyalty.services import PurchaseInput, purchase_record, purchases, purchases_record_batch
from loyalty.services.ledger import POINTS_MAX
from members.models import MemberStatus
from tests.concurrency import race
from tests.factories import EarningRuleFactory, MemberFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiers(program):
    return (
        TierFactory(name="Bronze", rank=1, threshold=Decimal("0")),
        TierFactory(name="Silver", rank=2, threshold=Decimal("500"), multiplier=Decimal("1.5")),
        TierFactory(name="Gold", rank=3, threshold=Decimal("1500"), multiplier=Decimal("2")),
    )


def standing(member) -> tuple:
    account = PointsAccount.objects.get(member=member)
    entries = list(
        LedgerEntry.objects.filter(account=account)
        .order_by("pk")
        .values_list("kind", "points", "balance_after", "remaining_points", "source")
    )
    purchases = list(
        Purchase.objects.filter(member=member)
        .order_by("pk")
        .values_list("amount", "points_earned", "earning_breakdown")
    )
    changes = list(
        TierChange.objects.filter(account=account)
        .order_by("pk")
        .values_list("from_tier__name", "to_tier__name", "figure", "reason")
    )
    return account.balance, account.tier.name if account.tier else None, entries, purchases, changes


AMOUNTS = ["300.00", "250.00", "100.00", "900.00", "80.00"]  # Bronze, Silver at 550, Gold at 1550


# 0: the batch's rows are sent as one array per column, as a large batch's are (PostgreSQL);
# 16: each value a parameter of its own, as a till's single purchase is.
@pytest.mark.parametrize("scalar_rows_max", [0, 16])
def test_a_batch_earns_exactly_what_the_same_purchases_earn_one_by_one(
    tiers, partner, scalar_rows_max, monkeypatch
):
    EarningRuleFactory(name="Shoes x2", multiplier=Decimal("2"), product_category="shoes")
    one_by_one, batched, other = MemberFactory(), MemberFactory(), MemberFactory()
    for number, amount in enumerate(AMOUNTS):
        purchase_record(
            partner=partner,
            external_id=f"S{number}",
            member=one_by_one,
            amount=amount,
            lines=[{"amount": amount, "category": "shoes" if number % 2 else "socks"}],
        )
    items = []
    for number, amount in enumerate(AMOUNTS):  # interleaved with another member's purchases
        items.append(
            PurchaseInput(
                external_id=f"B{number}",
                member=batched,
                amount=amount,
                lines=[{"amount": amount, "category": "shoes" if number % 2 else "socks"}],
            )
        )
        items.append(PurchaseInput(external_id=f"O{number}", member=other, amount="10.00"))

    monkeypatch.setattr(purchases, "SCALAR_ROWS_MAX", scalar_rows_max)
    outcomes = purchases_record_batch(partner=partner, items=items)

    assert [outcome.created for outcome in outcomes] == [True] * 10
    assert standing(batched) == standing(one_by_one)
    balance, tier, _entries, _purchases, changes = standing(batched)
    assert tier == "Gold" and [change[1] for change in changes] == ["Bronze", "Silver", "Gold"]
    # Each result carries the balance and tier right after that purchase, as a till expects.
    mine = [outcome for outcome in outcomes if outcome.purchase.member_id == batched.pk]
    assert [outcome.tier for outcome in mine] == ["Bronze", "Silver", "Silver", "Gold", "Gold"]
    assert mine[-1].balance == balance


def test_repeats_earlier_ids_and_refusals_are_answered_per_item(program, partner):
    member, blocked = MemberFactory(), MemberFactory(status=MemberStatus.BLOCKED)
    purchase_record(partner=partner, external_id="OLD", member=member, amount="5.00")
    items = [
        PurchaseInput(external_id="OLD", member=member, amount="5.00"),  # replay
        PurchaseInput(external_id="OLD", member=member, amount="6.00"),  # conflict
        PurchaseInput(external_id="N1", member=member, amount="7.00"),
        PurchaseInput(external_id="N1", member=member, amount="7.00"),  # repeat in the batch
        PurchaseInput(external_id="N1", member=member, amount="8.00"),  # conflicting repeat
        PurchaseInput(external_id="N2", member=blocked, amount="7.00"),
        PurchaseInput(external_id="N3", member=member, amount="-1"),
        PurchaseInput(external_id="", member=member, amount="1.00"),
    ]

    outcomes = purchases_record_batch(partner=partner, items=items)

    described = [
        ("created" if outcome.created else "replayed")
        if hasattr(outcome, "created")
        else outcome.code
        for outcome in outcomes
    ]
    assert described == [
        "replayed",
        "duplicate_purchase_conflict",
        "created",
        "replayed",
        "duplicate_purchase_conflict",
        "member_not_active",
        "invalid_amount",
        "invalid",
    ]
    assert outcomes[3].purchase.pk == outcomes[2].purchase.pk
    assert Purchase.objects.filter(member=member).count() == 2
    assert PointsAccount.objects.get(member=member).balance == 12


def test_an_item_that_would_overflow_the_balance_is_refused_alone(program, partner):
    member = MemberFactory()
    purchase_record(partner=partner, external_id="A", member=member, amount="1.00")
    PointsAccount.objects.filter(member=member).update(balance=POINTS_MAX - 5)
    items = [
        PurchaseInput(external_id="B", member=member, amount="3.00"),
        PurchaseInput(external_id="C", member=member, amount="3.00"),  # 3 more would not fit
    ]

    outcomes = purchases_record_batch(partner=partner, items=items)

    assert outcomes[0].created and outcomes[1].code == "invalid_points"
    assert not Purchase.objects.filter(external_id="C").exists()
    assert PointsAccount.objects.get(member=member).balance == POINTS_MAX - 2


def test_a_batch_costs_the_same_statements_for_two_purchases_or_two_hundred(
    tiers, partner, django_assert_max_num_queries
):
    members = [MemberFactory() for _ in range(20)]
    purchase_record(partner=partner, external_id="W", member=members[0], amount="1.00")

    def batch(prefix: str, count: int) -> list:
        return [
            PurchaseInput(
                external_id=f"{prefix}{number}",
                member=members[number % len(members)],
                amount="30.00",
                lines=[{"amount": "30.00", "category": "shoes"}],
            )
            for number in range(count)
        ]

    # ids posted before, accounts (and the missing ones created and locked), rolling figures,
    # purchases, lines, ledger entries, accounts, tier changes, savepoint and release, plus the
    # new accounts' base tier and its "enrolment" tier changes: 14 at most (SQLite splits long
    # INSERTs: PostgreSQL only).
    with django_assert_max_num_queries(14):
        purchases_record_batch(partner=partner, items=batch("A", 2))
    with django_assert_max_num_queries(14 if connection.vendor == "postgresql" else 30):
        purchases_record_batch(partner=partner, items=batch("B", 200))
    assert Purchase.objects.count() == 203


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_racing_single_posts_of_the_same_ids_records_each_once(
    program, partner, race_round
):
    members = [MemberFactory() for _ in range(4)]
    ids = [f"R{number}" for number in range(12)]

    def post(index: int) -> str:
        if index == 0:
            outcomes = purchases_record_batch(
                partner=partner,
                items=[
                    PurchaseInput(external_id=ext, member=members[n % 4], amount="10.00")
                    for n, ext in enumerate(reversed(ids))
                ],
            )
            return "batch " + ",".join(sorted({str(o.created) for o in outcomes}))
        ext = ids[index - 1]
        n = len(ids) - 1 - ids.index(ext)  # the member the batch gives this id
        purchase_record(partner=partner, external_id=ext, member=members[n % 4], amount="10.00")
        return "single"

    outcomes = race(len(ids) + 1, post)

    assert outcomes["single"] == len(ids) and sum(outcomes.values()) == len(ids) + 1
    assert not [outcome for outcome in outcomes if "unexpected" in outcome]
    assert Purchase.objects.count() == len(ids)
    assert LedgerEntry.objects.count() == len(ids)
    assert Counter(PointsAccount.objects.values_list("balance", flat=True)) == Counter({30: 4})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batches_over_the_same_members_in_opposite_orders_do_not_deadlock(
    program, partner, race_round
):
    members = [MemberFactory() for _ in range(10)]

    def post(index: int) -> str:
        order = members if index % 2 else list(reversed(members))
        purchases_record_batch(
            partner=partner,
            items=[
                PurchaseInput(external_id=f"D{index}-{n}", member=member, amount="10.00")
                for n, member in enumerate(order)
            ],
        )
        return "ok"

    outcomes = race(6, post)

    assert outcomes == Counter({"ok": 6})
    assert set(PointsAccount.objects.values_list("balance", flat=True)) == {60}
