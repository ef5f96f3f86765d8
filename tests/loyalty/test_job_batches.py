"""The nightly expiry and tier runs read their accounts in batches (bounded memory, issue 16):
the same results as one pass, with one bounded query per batch."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.models import EntryKind, LedgerEntry, PointsAccount, TierBasis
from loyalty.services import points_credit, points_expire, purchase_record, tiers_recalculate_all
from tests.factories import MemberFactory, TierFactory

pytestmark = pytest.mark.django_db


def _selects(queries, *needles: str) -> list[str]:
    return [
        query["sql"]
        for query in queries
        if query["sql"].lstrip().upper().startswith("SELECT")
        and all(needle in query["sql"] for needle in needles)
    ]


def test_expiry_reads_the_due_accounts_in_batches_and_expires_them_all(program):
    program.points_expiry_months = 12
    program.save()
    members = [MemberFactory() for _ in range(5)]
    with time_machine.travel(timezone.now() - dt.timedelta(days=500)):
        for number, member in enumerate(members, start=1):
            points_credit(member=member, points=10 * number, reason="Old")
    fresh = MemberFactory()
    points_credit(member=fresh, points=99, reason="New")  # not due: left alone

    with CaptureQueriesContext(connection) as captured:
        expired = points_expire(batch=2)

    assert expired == 10 + 20 + 30 + 40 + 50
    assert set(
        PointsAccount.objects.filter(member__in=members).values_list("balance", flat=True)
    ) == {0}
    assert PointsAccount.objects.get(member=fresh).balance == 99
    assert LedgerEntry.objects.filter(kind=EntryKind.EXPIRE).count() == 5
    # 5 due accounts, 2 a batch: three reads of the due account ids, each with a LIMIT.
    batches = _selects(captured.captured_queries, "DISTINCT", "remaining_points")
    assert len(batches) == 3
    assert all("LIMIT 2" in sql for sql in batches)
    assert points_expire(batch=2) == 0  # running it again expires nothing more


@pytest.mark.parametrize("basis", [TierBasis.SPEND, TierBasis.POINTS])
def test_tier_run_in_batches_moves_every_account_as_one_pass_would(program, partner, basis):
    program.tier_basis = basis
    program.save()
    TierFactory(name="Bronze", rank=1, threshold=Decimal("0"))
    TierFactory(name="Silver", rank=2, threshold=Decimal("500"), multiplier=Decimal("1.25"))
    TierFactory(name="Gold", rank=3, threshold=Decimal("1500"), multiplier=Decimal("1.5"))
    spends = ["2000.00", "600.00", "100.00", "1600.00", "700.00"]
    members = [MemberFactory() for _ in spends]
    with time_machine.travel(timezone.now() - dt.timedelta(days=800)):
        for number, (member, amount) in enumerate(zip(members, spends, strict=True)):
            purchase_record(
                partner=partner, external_id=f"old-{number}", member=member, amount=amount
            )
    # A recent purchase keeps the fourth member on Silver after the old spend lapses (550
    # euros; on the points basis 825 points, earned at Gold's 1.5).
    purchase_record(partner=partner, external_id="new-3", member=members[3], amount="550.00")
    assert PointsAccount.objects.get(member=members[0]).tier.name == "Gold"

    with CaptureQueriesContext(connection) as captured:
        changes = tiers_recalculate_all(batch=2)

    tiers = [PointsAccount.objects.get(member=member).tier.name for member in members]
    assert tiers == ["Bronze", "Bronze", "Bronze", "Silver", "Bronze"]
    assert changes == 4  # Gold, Silver, Gold and Silver moved down; Bronze stayed
    # 5 accounts, 2 a batch: three grouped reads of the figures, each for a range of members.
    figures = _selects(captured.captured_queries, "SUM(", "GROUP BY", 'member_id" >=')
    assert len(figures) == 3
    assert tiers_recalculate_all(batch=2) == 0
