"""`loyalty.services.earning_preview`: what a purchase would earn, checked like a purchase.

(Its own file while loyalty/services.py's tests are being reworked; belongs in test_services.py.)
"""

from decimal import Decimal

import pytest

from loyalty import errors
from loyalty.models import LedgerEntry, Purchase
from loyalty.services import earning_preview
from tests.factories import EarningRuleFactory, TierFactory

pytestmark = pytest.mark.django_db


def test_the_earning_preview_applies_rules_and_tier_and_writes_nothing(program):
    gold = TierFactory(name="Gold", rank=3, multiplier=Decimal("1.5"))
    EarningRuleFactory(name="Green", product_category="duurzaam", multiplier=Decimal("2"))

    breakdown = earning_preview(
        amount="30.00",
        channel="store",
        tier=gold,
        lines=[{"category": "duurzaam", "amount": "10.00"}, {"category": "food", "amount": "20"}],
    )

    assert breakdown.points == 60  # (10 x 2 + 20) x 1.5
    assert [line.rule for line in breakdown.lines] == ["Green", None]
    assert Purchase.objects.count() == LedgerEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("amount", "lines", "error", "field"),
    [
        ("0", [], errors.InvalidAmount, "amount"),
        ("10.001", [], errors.InvalidAmount, "amount"),
        ("30.00", [{"category": "a", "amount": "10.00"}], errors.InvalidPurchaseLines, "lines"),
        ("10.00", [{"category": "a", "amount": "x"}], errors.InvalidAmount, "lines[0].amount"),
        ("10.00", [{"category": "a" * 300, "amount": "10"}], errors.ValidationFailed, None),
    ],
)
def test_the_earning_preview_refuses_what_a_purchase_would_refuse(
    program, amount, lines, error, field
):
    with pytest.raises(error) as raised:
        earning_preview(amount=amount, channel="store", lines=lines)

    if field is not None:
        assert raised.value.field == field
    else:
        assert raised.value.field.startswith("lines[0].")
