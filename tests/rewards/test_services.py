"""Redeeming rewards: one transaction or nothing, every refusal reason, cancel, vouchers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from loyalty.errors import InsufficientPoints
from loyalty.models import LedgerEntry, PointsAccount
from loyalty.services import points_credit
from rewards import codes, services
from rewards.errors import (
    InvalidCodeCount,
    LimitReached,
    NotCancellable,
    NotEligible,
    NotFulfillable,
    OutOfStock,
    RewardUnavailable,
    VoucherAlreadyUsed,
    VoucherInvalid,
    VoucherNotValid,
)
from rewards.models import CodeStatus, Redemption, RedemptionStatus, Reward, VoucherCode
from segmentation.models import RuleSegment
from segmentation.services import recalculate
from tests.conftest import message_text
from tests.factories import MemberFactory, RewardFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read English texts; the product's default language is Dutch."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def rich_member(program):
    member = MemberFactory(language="en")
    points_credit(member=member, points=1000, reason="Welcome")
    return member


def balance(member) -> int:
    return PointsAccount.objects.get(member=member).balance


def unchanged(member, reward, points=1000, stock=None, codes_available=None):
    assert balance(member) == points
    assert not Redemption.objects.filter(member=member, reward=reward).exists()
    reward.refresh_from_db()
    assert reward.stock == stock
    if codes_available is not None:
        assert reward.codes.filter(status=CodeStatus.AVAILABLE).count() == codes_available


def test_a_voucher_redemption_debits_points_takes_stock_and_claims_a_code(
    rich_member, smtp_sink, django_capture_on_commit_callbacks
):
    reward = RewardFactory(points_cost=300, stock=5, name_en="Coffee for two")
    services.codes_generate(reward=reward, count=3)

    with django_capture_on_commit_callbacks(execute=True):
        redemption = services.reward_redeem(member=rich_member, reward=reward)

    assert balance(rich_member) == 700
    reward.refresh_from_db()
    assert reward.stock == 4
    assert redemption.status == RedemptionStatus.ISSUED
    assert (
        redemption.voucher.status == CodeStatus.ISSUED
        and redemption.code == redemption.voucher.code
    )
    assert codes.is_well_formed(redemption.code)
    assert redemption.ledger_entry.points == -300 and redemption.ledger_entry.kind == "redeem"
    assert redemption.valid_until > timezone.now() + dt.timedelta(days=89)
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == rich_member.email
    assert "Coffee for two" in message["Subject"]
    assert codes.display(redemption.code) in message_text(message)
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert images and images[0]["Content-ID"] == "<voucher-qr>"


def test_insufficient_points_change_nothing(program):
    member = MemberFactory()
    points_credit(member=member, points=50, reason="Welcome")
    reward = RewardFactory(points_cost=100, stock=3)
    services.codes_generate(reward=reward, count=2)

    with pytest.raises(InsufficientPoints):
        services.reward_redeem(member=member, reward=reward)

    unchanged(member, reward, points=50, stock=3, codes_available=2)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"is_active": False}, RewardUnavailable),
        ({"valid_from": timezone.now() + dt.timedelta(days=1)}, RewardUnavailable),
        ({"valid_until": timezone.now() - dt.timedelta(days=1)}, RewardUnavailable),
        ({"stock": 0}, OutOfStock),
    ],
)
def test_unavailable_rewards_are_refused(rich_member, changes, error):
    reward = RewardFactory(kind="product", **changes)

    with pytest.raises(error):
        services.reward_redeem(member=rich_member, reward=reward)

    unchanged(rich_member, reward, stock=changes.get("stock"))


def test_an_empty_code_pool_is_out_of_stock(rich_member):
    reward = RewardFactory(kind="voucher", stock=None)

    with pytest.raises(OutOfStock):
        services.reward_redeem(member=rich_member, reward=reward)

    unchanged(rich_member, reward)


def test_the_limit_per_member_counts_redemptions_not_cancelled(rich_member):
    reward = RewardFactory(kind="product", points_cost=100, limit_per_member=1)
    first = services.reward_redeem(member=rich_member, reward=reward)

    with pytest.raises(LimitReached):
        services.reward_redeem(member=rich_member, reward=reward)
    services.redemption_cancel(redemption=first)
    services.reward_redeem(member=rich_member, reward=reward)

    assert balance(rich_member) == 900


def test_the_minimum_tier_is_enforced(rich_member):
    gold = TierFactory(name="Gold", rank=3, threshold=Decimal("1500"))
    reward = RewardFactory(kind="product", minimum_tier=gold)

    with pytest.raises(NotEligible, match="Gold"):
        services.reward_redeem(member=rich_member, reward=reward)

    PointsAccount.objects.filter(member=rich_member).update(tier=gold)
    services.reward_redeem(member=rich_member, reward=reward)


def test_segment_rewards_are_for_members_of_the_segment(rich_member):
    outsider = MemberFactory()
    points_credit(member=outsider, points=1000, reason="Welcome")
    english = RuleSegment.objects.create(
        name="English", rule={"field": "language", "op": "in", "value": ["en"]}
    )
    reward = RewardFactory(kind="product")
    reward.segments.add(english)
    recalculate()

    services.reward_redeem(member=rich_member, reward=reward)
    with pytest.raises(NotEligible):
        services.reward_redeem(member=outsider, reward=reward)


def test_cancelling_returns_points_and_stock_and_voids_the_code(rich_member):
    reward = RewardFactory(points_cost=250, stock=2)
    services.codes_generate(reward=reward, count=2)
    redemption = services.reward_redeem(member=rich_member, reward=reward)
    code = redemption.voucher

    cancelled = services.redemption_cancel(redemption=redemption)

    assert cancelled.status == RedemptionStatus.CANCELLED
    assert cancelled.code == code.code  # the history keeps which code it was
    assert cancelled.refund_entry.points == 250
    assert balance(rich_member) == 1000
    reward.refresh_from_db()
    assert reward.stock == 2
    code.refresh_from_db()
    assert code.status == CodeStatus.VOID
    assert reward.codes.filter(status=CodeStatus.AVAILABLE).count() == 1
    with pytest.raises(NotCancellable):
        services.redemption_cancel(redemption=cancelled)


def test_a_cancelled_code_is_never_handed_to_another_member_and_fails_at_the_till(rich_member):
    other = MemberFactory()
    points_credit(member=other, points=1000, reason="Welcome")
    reward = RewardFactory(points_cost=250)
    services.codes_generate(reward=reward, count=2)
    first = services.reward_redeem(member=rich_member, reward=reward)
    services.redemption_cancel(redemption=first)

    second = services.reward_redeem(member=other, reward=reward)

    assert second.code != first.code
    with pytest.raises(VoucherNotValid, match="cancelled"):
        services.voucher_validate(code=first.code)
    with pytest.raises(VoucherNotValid, match="cancelled"):
        services.voucher_use(code=first.code)
    with pytest.raises(OutOfStock):  # the pool is empty: the void code is not reissued
        services.reward_redeem(member=other, reward=reward)
    assert services.voucher_use(code=second.code).member == other


def test_a_used_voucher_cannot_be_cancelled_or_used_again(rich_member):
    reward = RewardFactory()
    services.codes_generate(reward=reward, count=1)
    redemption = services.reward_redeem(member=rich_member, reward=reward)
    typed = codes.display(redemption.code).lower()  # how a cashier might type it

    assert services.voucher_validate(code=typed) == redemption
    used = services.voucher_use(code=typed)

    assert used.status == RedemptionStatus.USED
    with pytest.raises(VoucherAlreadyUsed, match="was used on"):
        services.voucher_use(code=redemption.code)
    with pytest.raises(NotCancellable):
        services.redemption_cancel(redemption=used)
    assert VoucherCode.objects.get(code=redemption.code).status == CodeStatus.USED


def test_unknown_unissued_and_expired_vouchers_are_refused(rich_member):
    reward = RewardFactory(voucher_valid_days=1)
    services.codes_generate(reward=reward, count=2)
    redemption = services.reward_redeem(member=rich_member, reward=reward)
    spare = reward.codes.get(status=CodeStatus.AVAILABLE)

    with pytest.raises(VoucherInvalid):
        services.voucher_use(code="NOPE-NOPE-NOP")
    with pytest.raises(VoucherNotValid):
        services.voucher_use(code=spare.code)
    with pytest.raises(VoucherNotValid, match="expired"):
        services.voucher_validate(code=redemption.code, now=timezone.now() + dt.timedelta(days=2))


def test_products_are_requested_then_fulfilled_once(rich_member):
    reward = RewardFactory(kind="product")
    redemption = services.reward_redeem(member=rich_member, reward=reward)

    assert redemption.status == RedemptionStatus.REQUESTED and redemption.voucher is None
    fulfilled = services.redemption_fulfil(redemption=redemption)
    assert fulfilled.status == RedemptionStatus.FULFILLED
    with pytest.raises(NotFulfillable):
        services.redemption_fulfil(redemption=fulfilled)
    with pytest.raises(NotCancellable):
        services.redemption_cancel(redemption=fulfilled)


def test_generated_codes_are_unique_and_well_formed(db):
    reward = RewardFactory()

    assert services.codes_generate(reward=reward, count=500) == 500
    generated = list(reward.codes.values_list("code", flat=True))
    assert len(set(generated)) == 500 and all(codes.is_well_formed(code) for code in generated)
    with pytest.raises(InvalidCodeCount):
        services.codes_generate(reward=reward, count=0)


def test_a_mistyped_code_fails_its_check_character():
    code = codes.generate()
    wrong = ("3" if code[0] != "3" else "4") + code[1:]

    assert codes.is_well_formed(code)
    assert not codes.is_well_formed(wrong)
    assert codes.normalise(codes.display(code).lower()) == code


def test_the_ledger_explains_a_redemption_in_the_readers_language(program):
    member = MemberFactory(language="nl")
    points_credit(member=member, points=500, reason="Welkom")
    reward = RewardFactory(kind="product", name_nl="Taart", name_en="Cake")

    services.reward_redeem(member=member, reward=reward)

    entry = LedgerEntry.objects.get(kind="redeem")
    assert entry.reason == "Reward: Cake"  # the default language (English in these tests)
    with translation.override("nl"):
        assert entry.reason_text == "Beloning: Taart"
    with translation.override("en"):
        assert entry.reason_text == "Reward: Cake"
    assert Reward.objects.get().stock is None


def test_a_discount_gets_a_personal_code_that_is_void_after_cancelling(rich_member):
    reward = RewardFactory(kind="discount", points_cost=200)

    redemption = services.reward_redeem(member=rich_member, reward=reward)

    assert codes.is_well_formed(redemption.code) and redemption.voucher.status == CodeStatus.ISSUED
    assert services.voucher_validate(code=redemption.code) == redemption
    services.redemption_cancel(redemption=redemption)
    assert VoucherCode.objects.get(code=redemption.code).status == CodeStatus.VOID
    with pytest.raises(VoucherNotValid, match="cancelled"):
        services.voucher_validate(code=redemption.code)
