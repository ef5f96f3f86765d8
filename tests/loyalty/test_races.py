"""Real concurrency on PostgreSQL: threads with their own connections race the services."""

from collections import Counter

import pytest

from loyalty.models import LedgerEntry, PointsAccount, Purchase
from loyalty.services import points_credit, points_debit, purchase_record, purchase_refund
from members.models import Member
from members.services import member_enrol
from tests.concurrency import race
from tests.factories import MemberFactory, PartnerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_debits_of_a_whole_balance_give_exactly_one_success(program, race_round):
    member = MemberFactory()
    points_credit(member=member, points=100, reason="Welcome")

    outcomes = race(20, lambda i: points_debit(member=member, points=100, reason=f"Reward {i}"))

    assert outcomes == Counter({"ok": 1, "insufficient_points": 19})
    account = PointsAccount.objects.get(member=member)
    assert account.balance == 0
    assert LedgerEntry.objects.filter(account=account, kind="redeem").count() == 1


def test_the_same_purchase_posted_ten_times_concurrently_earns_once(program, race_round):
    member = MemberFactory()
    partner = PartnerFactory(name="POS")

    def post(_index):
        result = purchase_record(partner=partner, external_id="T-1", member=member, amount="42.00")
        return "created" if result.created else "replayed"

    outcomes = race(10, post)

    assert outcomes == Counter({"created": 1, "replayed": 9})
    assert Purchase.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="earn").count() == 1
    assert PointsAccount.objects.get(member=member).balance == 42


def test_concurrent_partial_refunds_never_refund_more_than_the_purchase(program, race_round):
    member = MemberFactory()
    partner = PartnerFactory(name="Shop")
    purchase = purchase_record(
        partner=partner, external_id="R", member=member, amount="100.00"
    ).purchase

    outcomes = race(8, lambda i: purchase_refund(purchase=purchase, amount="30.00"))

    assert outcomes == Counter({"ok": 3, "refund_too_large": 5})
    purchase.refresh_from_db()
    assert purchase.refunded_amount == 90
    assert PointsAccount.objects.get(member=member).balance == 10


def test_concurrent_first_earnings_create_one_account(program):
    member = MemberFactory()
    partner = PartnerFactory(name="Web")

    outcomes = race(
        6,
        lambda i: purchase_record(
            partner=partner, external_id=f"F{i}", member=member, amount="10.00"
        ),
    )

    assert outcomes == Counter({"ok": 6})
    assert PointsAccount.objects.filter(member=member).count() == 1
    assert PointsAccount.objects.get(member=member).balance == 60


def test_enrolling_the_same_address_concurrently_creates_one_member(program):
    def enrol(index):
        member = member_enrol(
            email="Race@Example.com",
            first_name=f"R{index}",
            birth_date=None,
            accepted_terms=True,
            password="a-long-secret-phrase",
        )
        return "created" if member is not None else "answered like a new address"

    program.minimum_age = 0
    program.save()

    outcomes = race(5, enrol)

    assert outcomes == Counter({"created": 1, "answered like a new address": 4})
    assert Member.objects.filter(email="race@example.com").count() == 1
