"""Invariants of the ledger under any sequence of operations (hypothesis)."""

import datetime as dt

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.errors import ApplicationError
from loyalty.models import LedgerEntry, PointsAccount
from loyalty.services import (
    ledger_consistency_check,
    points_adjust,
    points_credit,
    points_debit,
    points_expire,
    purchase_record,
    purchase_refund,
)
from tests.factories import MemberFactory, PartnerFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(0, 1), st.integers(1, 30_000)),  # cents
        st.tuples(st.just("debit"), st.integers(0, 1), st.integers(1, 300)),
        st.tuples(st.just("adjust"), st.integers(0, 1), st.integers(-300, 300)),
        st.tuples(st.just("refund"), st.integers(0, 1), st.integers(1, 20_000)),
        st.tuples(st.just("bonus"), st.integers(0, 1), st.integers(1, 200)),
        st.tuples(st.just("wait"), st.integers(0, 1), st.integers(1, 400)),  # days
        st.tuples(st.just("expire"), st.integers(0, 1), st.just(0)),
    ),
    max_size=25,
)


class Rollback(Exception):
    pass


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_every_cached_balance_equals_its_ledger_sum_and_is_never_negative(program, ops):
    program.points_expiry_months = 6
    program.save()
    try:
        with transaction.atomic():  # each example starts from the same empty state
            _run(ops)
            raise Rollback
    except Rollback:
        pass


def _run(ops):
    members = [MemberFactory(), MemberFactory()]
    partner = PartnerFactory(name="Shop")
    staff = StaffUserFactory()
    purchases = {0: [], 1: []}
    clock = timezone.now() - dt.timedelta(days=3000)
    for step, (kind, who, value) in enumerate(ops):
        member = members[who]
        with time_machine.travel(clock, tick=False):
            try:
                if kind == "earn":
                    result = purchase_record(
                        partner=partner,
                        external_id=f"p{step}",
                        member=member,
                        amount=f"{value / 100:.2f}",
                    )
                    purchases[who].append(result.purchase)
                elif kind == "debit":
                    points_debit(member=member, points=value, reason="Reward")
                elif kind == "adjust" and value:
                    points_adjust(member=member, points=value, reason="Fix", staff_user=staff)
                elif kind == "refund" and purchases[who]:
                    purchase = purchases[who][value % len(purchases[who])]
                    purchase.refresh_from_db()
                    purchase_refund(purchase=purchase, amount=f"{max(value / 100, 0.01):.2f}")
                elif kind == "bonus":
                    points_credit(member=member, points=value, reason="Bonus")
                elif kind == "wait":
                    clock += dt.timedelta(days=value)
                elif kind == "expire":
                    points_expire()
            except ApplicationError:
                pass  # a refused operation must change nothing; the invariants check that
        for account in PointsAccount.objects.all():
            entries = LedgerEntry.objects.filter(account=account)
            assert account.balance >= 0
            assert account.balance == sum(entries.values_list("points", flat=True))
            assert account.balance == sum(entries.values_list("remaining_points", flat=True))
    assert ledger_consistency_check().mismatches == []
