"""The program core's services: earning, duplicates, refunds, the ledger, expiry and tiers."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone, translation

from loyalty import errors
from loyalty.models import (
    EntryKind,
    LedgerEntry,
    PointsAccount,
    Purchase,
    PurchaseLine,
    Refund,
    TierChange,
)
from loyalty.services import (
    ledger_consistency_check,
    points_adjust,
    points_credit,
    points_debit,
    points_expire,
    purchase_record,
    purchase_refund,
    tiers_recalculate_all,
)
from members.errors import MemberNotActive
from members.models import MemberStatus
from tests.factories import EarningRuleFactory, MemberFactory, TierFactory

pytestmark = pytest.mark.django_db


def balance(member) -> int:
    return PointsAccount.objects.get(member=member).balance


def buy(partner, member, amount="100.00", external_id="P1", **kwargs):
    return purchase_record(
        partner=partner, external_id=external_id, member=member, amount=amount, **kwargs
    )


# --- earning -------------------------------------------------------------------------------


def test_a_purchase_earns_the_base_rate_rounded_down(program, partner, member):
    result = buy(partner, member, amount="25.99")

    assert result.created
    assert result.purchase.points_earned == 25
    assert balance(member) == 25
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.points, entry.purchase_id) == ("earn", 25, result.purchase.pk)


def test_category_channel_and_tier_multipliers_combine_per_line(program, partner, member):
    gold = TierFactory(name="Gold", rank=3, threshold=Decimal("0"), multiplier=Decimal("1.50"))
    EarningRuleFactory(
        name="Green", product_category="duurzaam", multiplier=Decimal("2"), priority=10
    )
    EarningRuleFactory(name="Web", channel="webshop", multiplier=Decimal("1.5"), priority=5)
    buy(partner, member, amount="1.00", external_id="warmup")  # reaches Gold (threshold 0)
    assert PointsAccount.objects.get(member=member).tier == gold

    result = buy(
        partner,
        member,
        amount="100.00",
        channel="webshop",
        lines=[
            {"amount": "40.00", "category": "duurzaam"},
            {"amount": "60.00", "category": "food"},
        ],
    )

    # 40 x 2 (green wins on priority) + 60 x 1.5 (web) = 170, x 1.5 (Gold) = 255
    assert result.purchase.points_earned == 255
    lines = result.purchase.earning_breakdown["lines"]
    assert [line["rule"] for line in lines] == ["Green", "Web"]


def test_a_rule_outside_its_validity_window_does_not_apply(program, partner, member):
    now = timezone.now()
    EarningRuleFactory(
        multiplier=Decimal("3"),
        valid_from=now - dt.timedelta(days=10),
        valid_until=now - dt.timedelta(days=1),
    )

    assert buy(partner, member, amount="10.00").purchase.points_earned == 10


def test_posting_the_same_purchase_twice_earns_once_and_returns_the_first(program, partner, member):
    first = buy(partner, member)

    second = buy(partner, member)

    assert second.created is False
    assert second.purchase.pk == first.purchase.pk
    assert balance(member) == 100
    assert LedgerEntry.objects.count() == 1


def test_the_same_purchase_id_with_other_details_is_a_conflict(program, partner, member):
    buy(partner, member, amount="100.00")

    with pytest.raises(errors.DuplicatePurchaseConflict):
        buy(partner, member, amount="120.00")

    assert Purchase.objects.count() == 1


@pytest.mark.parametrize("amount", ["0", "-5.00", "abc", "1.005", "NaN", "Infinity"])
def test_a_bad_amount_is_refused_and_writes_nothing(program, partner, member, amount):
    with pytest.raises(errors.InvalidAmount):
        buy(partner, member, amount=amount)

    assert Purchase.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


def test_lines_that_do_not_add_up_are_refused(program, partner, member):
    with pytest.raises(errors.InvalidPurchaseLines):
        buy(partner, member, amount="10.00", lines=[{"amount": "4.00"}, {"amount": "5.00"}])

    assert Purchase.objects.count() == 0


@pytest.mark.parametrize(
    "status", [MemberStatus.BLOCKED, MemberStatus.ERASED, MemberStatus.INVITED]
)
def test_a_member_who_cannot_earn_is_refused(program, partner, status):
    member = MemberFactory(status=status)

    with pytest.raises(MemberNotActive):
        buy(partner, member)

    assert Purchase.objects.count() == 0


def test_a_purchase_in_the_future_is_refused(program, partner, member):
    with pytest.raises(errors.ValidationFailed):
        buy(partner, member, purchased_at=timezone.now() + dt.timedelta(days=1))

    assert Purchase.objects.count() == 0


# --- refunds -------------------------------------------------------------------------------


def test_a_partial_refund_reverses_points_proportionally(program, partner, member):
    purchase = buy(partner, member, amount="100.00").purchase

    refund = purchase_refund(purchase=purchase, amount="25.00")

    assert refund.points_reversed == 25
    assert balance(member) == 75
    purchase.refresh_from_db()
    assert (purchase.refunded_amount, purchase.points_reversed) == (Decimal("25.00"), 25)


def test_partial_refunds_add_up_to_exactly_the_points_earned(program, partner, member):
    purchase = buy(partner, member, amount="10.00").purchase  # 10 points
    for _ in range(3):
        purchase_refund(purchase=purchase, amount="3.33")

    purchase_refund(purchase=purchase, amount="0.01")

    purchase.refresh_from_db()
    assert purchase.refunded_amount == purchase.amount
    assert sum(Refund.objects.values_list("points_reversed", flat=True)) == 10
    assert balance(member) == 0


def test_a_refund_larger_than_what_is_left_is_refused_and_changes_nothing(program, partner, member):
    purchase = buy(partner, member, amount="50.00").purchase
    purchase_refund(purchase=purchase, amount="30.00")

    with pytest.raises(errors.RefundTooLarge):
        purchase_refund(purchase=purchase, amount="20.01")

    purchase.refresh_from_db()
    assert purchase.refunded_amount == Decimal("30.00")
    assert Refund.objects.count() == 1
    assert balance(member) == 20


def test_a_refund_with_the_same_refund_id_is_applied_once(program, partner, member):
    purchase = buy(partner, member, amount="50.00").purchase

    first = purchase_refund(purchase=purchase, amount="10.00", external_id="R1")
    again = purchase_refund(purchase=purchase, amount="10.00", external_id="R1")

    assert again.pk == first.pk
    assert balance(member) == 40


def test_a_refund_after_the_points_were_spent_never_makes_the_balance_negative(
    program, partner, member
):
    purchase = buy(partner, member, amount="100.00").purchase
    points_debit(member=member, points=80, reason="Reward")

    refund = purchase_refund(purchase=purchase, amount="100.00")

    assert (refund.points_reversed, refund.points_not_recovered) == (20, 80)
    assert balance(member) == 0


# --- ledger --------------------------------------------------------------------------------


def test_a_debit_beyond_the_balance_is_refused_and_changes_nothing(program, member):
    points_credit(member=member, points=50, reason="Welcome")

    with pytest.raises(errors.InsufficientPoints):
        points_debit(member=member, points=51, reason="Reward")

    assert balance(member) == 50
    assert LedgerEntry.objects.count() == 1


def test_debits_consume_the_oldest_lots_first(program, member):
    with time_machine.travel(timezone.now() - dt.timedelta(days=30)):
        old = points_credit(member=member, points=30, reason="Old")
    new = points_credit(member=member, points=50, reason="New")

    points_debit(member=member, points=40, reason="Reward")

    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.remaining_points, new.remaining_points) == (0, 40)


def test_a_staff_adjustment_needs_a_reason_and_is_audited(program, member, staff_user):
    with pytest.raises(errors.ReasonRequired):
        points_adjust(member=member, points=10, reason="  ", staff_user=staff_user)

    entry = points_adjust(member=member, points=10, reason="Goodwill", staff_user=staff_user)

    assert (entry.kind, entry.created_by, entry.source) == ("adjust", staff_user, "staff")
    assert LedgerEntry.objects.count() == 1


def test_an_adjustment_that_would_go_negative_is_refused(program, member, staff_user):
    points_adjust(member=member, points=10, reason="Goodwill", staff_user=staff_user)

    with pytest.raises(errors.InsufficientPoints):
        points_adjust(member=member, points=-11, reason="Correction", staff_user=staff_user)

    assert balance(member) == 10
    assert LedgerEntry.objects.count() == 1


@pytest.mark.parametrize("points", [0, 1.5, True])
def test_zero_or_fractional_points_are_refused(program, member, staff_user, points):
    with pytest.raises(errors.InvalidPoints):
        points_adjust(member=member, points=points, reason="x", staff_user=staff_user)


# --- expiry --------------------------------------------------------------------------------


def test_expiry_removes_what_remains_of_old_lots_oldest_first(program, member):
    program.points_expiry_months = 12
    program.save()
    start = timezone.now() - dt.timedelta(days=500)
    with time_machine.travel(start):
        points_credit(member=member, points=100, reason="Old")
    with time_machine.travel(start + dt.timedelta(days=200)):
        points_credit(member=member, points=50, reason="Newer")
        points_debit(member=member, points=30, reason="Reward")  # from the old lot

    expired = points_expire()

    assert expired == 70
    assert balance(member) == 50
    entry = LedgerEntry.objects.filter(kind=EntryKind.EXPIRE).get()
    assert entry.points == -70
    assert points_expire() == 0  # running it again expires nothing more


def test_expired_points_cannot_be_spent_before_the_nightly_run(program, member):
    program.points_expiry_months = 1
    program.save()
    with time_machine.travel(timezone.now() - dt.timedelta(days=60)):
        points_credit(member=member, points=100, reason="Old")

    with pytest.raises(errors.InsufficientPoints):
        points_debit(member=member, points=10, reason="Reward")


def test_points_without_expiry_never_expire(program, member):
    program.points_expiry_months = 0
    program.save()
    with time_machine.travel(timezone.now() - dt.timedelta(days=3650)):
        points_credit(member=member, points=100, reason="Old")

    assert points_expire() == 0
    assert balance(member) == 100


# --- tiers ---------------------------------------------------------------------------------


@pytest.fixture
def tiers(program):
    return (
        TierFactory(name="Bronze", rank=1, threshold=Decimal("0")),
        TierFactory(name="Silver", rank=2, threshold=Decimal("500"), multiplier=Decimal("1.25")),
        TierFactory(name="Gold", rank=3, threshold=Decimal("1500"), multiplier=Decimal("1.5")),
    )


def test_a_purchase_that_crosses_a_threshold_upgrades_at_once(tiers, partner, member):
    bronze, silver, _gold = tiers
    buy(partner, member, amount="400.00", external_id="A")
    assert PointsAccount.objects.get(member=member).tier == bronze

    buy(partner, member, amount="100.00", external_id="B")

    account = PointsAccount.objects.get(member=member)
    assert account.tier == silver
    # The new account starts on Bronze (threshold 0) at once; the purchase moves it up.
    reasons = TierChange.objects.filter(account=account).order_by("pk")
    assert list(reasons.values_list("reason", flat=True)) == ["enrolment", "upgrade"]


def test_a_refund_does_not_downgrade_until_the_nightly_run_after_the_grace_period(
    tiers, partner, member
):
    _bronze, silver, _gold = tiers
    purchase = buy(partner, member, amount="600.00").purchase
    purchase_refund(purchase=purchase, amount="600.00")

    tiers_recalculate_all()
    assert PointsAccount.objects.get(member=member).tier == silver  # still in grace

    with time_machine.travel(timezone.now() + dt.timedelta(days=400)):
        changes = tiers_recalculate_all()

    assert changes == 1
    assert PointsAccount.objects.get(member=member).tier.name == "Bronze"


def test_spend_older_than_twelve_months_no_longer_counts(tiers, partner, member):
    with time_machine.travel(timezone.now() - dt.timedelta(days=800)):
        buy(partner, member, amount="2000.00")
    assert PointsAccount.objects.get(member=member).tier.name == "Gold"

    tiers_recalculate_all()

    assert PointsAccount.objects.get(member=member).tier.name == "Bronze"


# --- consistency ---------------------------------------------------------------------------


def test_the_consistency_check_reports_a_tampered_balance_and_changes_nothing(program, member):
    points_credit(member=member, points=40, reason="Welcome")
    PointsAccount.objects.filter(member=member).update(balance=45)

    check = ledger_consistency_check()

    assert check.accounts_checked == 1
    assert {row["kind"] for row in check.mismatches} == {"ledger", "lots"}
    assert balance(member) == 45


def test_the_consistency_check_is_clean_after_normal_activity(program, partner, member):
    purchase = buy(partner, member, amount="80.00").purchase
    purchase_refund(purchase=purchase, amount="20.00")
    points_debit(member=member, points=30, reason="Reward")

    assert ledger_consistency_check().mismatches == []


# --- refunds after expiry ------------------------------------------------------------------


@pytest.fixture
def expired_purchase(program, partner, member):
    """A purchase of 100 points made 14 months ago (expiry 12 months), and 50 valid points
    from a purchase last month."""
    program.points_expiry_months = 12
    program.save()
    with time_machine.travel(timezone.now() - dt.timedelta(days=425)):
        old = buy(partner, member, external_id="OLD").purchase
    with time_machine.travel(timezone.now() - dt.timedelta(days=30)):
        buy(partner, member, amount="50.00", external_id="NEW")
    return old


def test_a_refund_of_a_purchase_whose_points_expired_unswept_is_not_refused(
    expired_purchase, member
):
    refund = purchase_refund(purchase=expired_purchase, amount="100.00")

    assert (refund.points_expired, refund.points_reversed, refund.points_not_recovered) == (
        100,
        0,
        0,
    )
    assert balance(member) == 50  # the valid lot is untouched
    assert LedgerEntry.objects.filter(kind=EntryKind.EXPIRE).get().points == -100
    assert ledger_consistency_check().mismatch_count == 0


def test_a_refund_after_the_nightly_expiry_never_takes_valid_points(expired_purchase, member):
    assert points_expire() == 100

    refund = purchase_refund(purchase=expired_purchase, amount="100.00")

    assert (refund.points_expired, refund.points_reversed) == (100, 0)
    assert balance(member) == 50


def test_spent_points_of_an_expired_purchase_are_reversed_and_the_expired_rest_counted(
    program, partner, member
):
    program.points_expiry_months = 12
    program.save()
    start = timezone.now() - dt.timedelta(days=425)
    with time_machine.travel(start):
        purchase = buy(partner, member, external_id="OLD").purchase
        points_debit(member=member, points=30, reason="Reward")  # 70 of the lot stay unspent
    with time_machine.travel(timezone.now() - dt.timedelta(days=30)):
        buy(partner, member, amount="50.00", external_id="NEW")

    half = purchase_refund(purchase=purchase, amount="50.00")
    rest = purchase_refund(purchase=purchase, amount="50.00")

    # The 70 expired points count first; the 30 spent ones come back from the valid lot.
    assert (half.points_expired, half.points_reversed) == (50, 0)
    assert (rest.points_expired, rest.points_reversed, rest.points_not_recovered) == (20, 30, 0)
    assert balance(member) == 20
    assert ledger_consistency_check().mismatch_count == 0


# --- every input within its column -----------------------------------------------------------


def nothing_written() -> bool:
    return not (
        Purchase.objects.exists() or PurchaseLine.objects.exists() or LedgerEntry.objects.exists()
    )


def test_an_unknown_channel_is_refused_with_the_choices_and_writes_nothing(
    program, partner, member
):
    with pytest.raises(errors.ValidationFailed) as raised:
        buy(partner, member, channel="telepathy")

    assert raised.value.field == "channel"
    assert "store, webshop, app, phone" in str(raised.value.message)
    assert nothing_written()


@pytest.mark.parametrize(
    ("field", "limit", "purchase"),
    [
        ("external_id", 100, lambda text: {"external_id": text}),
        ("store", 100, lambda text: {"store": text}),
        ("lines[0].category", 60, lambda text: {"lines": [{"amount": "100.00", "category": text}]}),
        (
            "lines[1].product_code",
            60,
            lambda text: {
                "lines": [{"amount": "50.00"}, {"amount": "50.00", "product_code": text}]
            },
        ),
        (
            "lines[0].description",
            200,
            lambda text: {"lines": [{"amount": "100.00", "description": text}]},
        ),
    ],
)
def test_text_at_its_columns_limit_is_kept_and_one_more_character_refused(
    program, partner, member, field, limit, purchase
):
    with pytest.raises(errors.ValidationFailed) as raised:
        buy(partner, member, **purchase("x" * (limit + 1)))
    assert raised.value.field == field
    assert str(limit) in str(raised.value.message)
    assert nothing_written()

    result = buy(partner, member, **purchase("x" * limit))

    stored = {
        "external_id": result.purchase.external_id,
        "store": result.purchase.store,
        **{
            f"lines[{index}].{name}": getattr(line, name)
            for index, line in enumerate(result.purchase.lines.order_by("pk"))
            for name in ("category", "product_code", "description")
        },
    }
    assert stored[field] == "x" * limit


@pytest.mark.parametrize("quantity", [0, -1, "two", True, "1.0001", 10_000_000, "NaN"])
def test_a_quantity_outside_the_column_is_refused_and_writes_nothing(
    program, partner, member, quantity
):
    with pytest.raises(errors.ValidationFailed) as raised:
        buy(partner, member, lines=[{"amount": "100.00", "quantity": quantity}])

    assert raised.value.field == "lines[0].quantity"
    assert "9999999.999" in str(raised.value.message)
    assert nothing_written()


def test_purchase_lines_are_stored_as_checked_not_as_given(program, partner, member):
    given = [
        {"amount": "60.00", "category": "  zuivel ", "quantity": "9999999.999"},
        {"amount": 40, "description": " Kaas ", "quantity": None, "unknown": "ignored"},
    ]

    result = buy(partner, member, lines=given)

    lines = list(
        result.purchase.lines.order_by("pk").values_list(
            "amount", "category", "description", "quantity"
        )
    )
    assert lines == [
        (Decimal("60.00"), "zuivel", "", Decimal("9999999.999")),
        (Decimal("40.00"), "", "Kaas", Decimal("1")),
    ]


def test_an_amount_at_the_columns_limit_is_recorded_and_one_cent_more_refused(
    program, partner, member
):
    program.points_per_euro = Decimal("0.01")
    program.save()

    with pytest.raises(errors.InvalidAmount) as raised, translation.override("nl"):
        buy(partner, member, amount="10000000000.00")
    assert "€\u00a09.999.999.999,99" in str(raised.value.message)
    assert nothing_written()

    result = buy(partner, member, amount="9999999999.99")

    result.purchase.refresh_from_db()
    assert result.purchase.amount == Decimal("9999999999.99")
    assert balance(member) == 99_999_999


def test_a_purchase_earning_more_points_than_an_account_holds_is_refused(program, partner, member):
    with pytest.raises(errors.InvalidPoints) as raised, translation.override("en"):
        buy(partner, member, amount="2147483648.00")

    assert "2,147,483,647" in str(raised.value.message)
    assert nothing_written()


def test_a_refund_id_of_100_characters_is_kept_and_101_refused(program, partner, member):
    purchase = buy(partner, member).purchase

    with pytest.raises(errors.ValidationFailed) as raised:
        purchase_refund(purchase=purchase, amount="10.00", external_id="r" * 101)
    assert raised.value.field == "external_id" and "100" in str(raised.value.message)
    assert not Refund.objects.exists()

    refund = purchase_refund(purchase=purchase, amount="10.00", external_id="r" * 100)
    assert Refund.objects.get().external_id == refund.external_id == "r" * 100


@pytest.mark.parametrize("write", ["adjust", "credit"])
def test_a_ledger_reason_of_255_characters_is_kept_and_256_refused(
    program, member, staff_user, write
):
    def attempt(reason):
        if write == "adjust":
            return points_adjust(member=member, points=5, reason=reason, staff_user=staff_user)
        return points_credit(member=member, points=5, reason=reason)

    with pytest.raises(errors.ValidationFailed) as raised:
        attempt("r" * 256)
    assert raised.value.field == "reason" and "255" in str(raised.value.message)
    assert not LedgerEntry.objects.exists()

    assert attempt("r" * 255).reason == "r" * 255


def test_an_adjustment_beyond_what_an_account_holds_is_refused(program, member, staff_user):
    with pytest.raises(errors.InvalidPoints):
        points_adjust(member=member, points=2**31, reason="Typo", staff_user=staff_user)

    assert not LedgerEntry.objects.exists()
