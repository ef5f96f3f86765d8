"""Concurrent redemptions on PostgreSQL, with real threads on their own connections."""

from collections import Counter

import pytest

from loyalty.models import LedgerEntry, PointsAccount
from loyalty.services import points_credit
from rewards import services
from rewards.models import CodeStatus, Redemption
from tests.concurrency import race
from tests.factories import MemberFactory, RewardFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_hundred_redemptions_of_a_stock_of_fifty_give_exactly_fifty(program, race_round):
    members = MemberFactory.create_batch(200)
    for member in members:
        points_credit(member=member, points=100, reason="Welcome")
    reward = RewardFactory(points_cost=60, stock=50)
    services.codes_generate(reward=reward, count=80)

    outcomes = race(200, lambda i: services.reward_redeem(member=members[i], reward=reward))

    assert outcomes == Counter({"ok": 50, "out_of_stock": 150})
    reward.refresh_from_db()
    assert reward.stock == 0
    assert reward.codes.filter(status=CodeStatus.ISSUED).count() == 50
    assert reward.codes.filter(status=CodeStatus.AVAILABLE).count() == 30
    redemptions = Redemption.objects.filter(reward=reward)
    assert redemptions.count() == 50
    assert len(set(redemptions.values_list("voucher_id", flat=True))) == 50
    assert LedgerEntry.objects.filter(kind="redeem").count() == 50
    balances = Counter(PointsAccount.objects.values_list("balance", flat=True))
    assert balances == Counter({40: 50, 100: 150})


def test_two_members_racing_for_the_last_item_give_one_redemption(program):
    first, second = MemberFactory(), MemberFactory()
    for member in (first, second):
        points_credit(member=member, points=500, reason="Welcome")
    reward = RewardFactory(kind="product", stock=1)

    outcomes = race(2, lambda i: services.reward_redeem(member=[first, second][i], reward=reward))

    assert outcomes == Counter({"ok": 1, "out_of_stock": 1})
    assert Redemption.objects.count() == 1
    assert sorted(PointsAccount.objects.values_list("balance", flat=True)) == [400, 500]


def test_a_double_click_with_points_for_one_gives_one(program, race_round):
    member = MemberFactory()
    points_credit(member=member, points=150, reason="Welcome")
    reward = RewardFactory(kind="product", points_cost=100)

    outcomes = race(2, lambda i: services.reward_redeem(member=member, reward=reward))

    assert outcomes == Counter({"ok": 1, "insufficient_points": 1})
    assert Redemption.objects.count() == 1
    assert PointsAccount.objects.get(member=member).balance == 50


def test_concurrent_use_of_one_voucher_succeeds_once(program, race_round):
    member = MemberFactory()
    points_credit(member=member, points=500, reason="Welcome")
    reward = RewardFactory()
    services.codes_generate(reward=reward, count=1)
    redemption = services.reward_redeem(member=member, reward=reward)

    outcomes = race(8, lambda i: services.voucher_use(code=redemption.code))

    assert outcomes == Counter({"ok": 1, "voucher_used": 7})


def test_using_and_cancelling_one_voucher_at_once_gives_one_winner_and_no_deadlock(
    program, race_round
):
    member = MemberFactory()
    points_credit(member=member, points=500, reason="Welcome")
    reward = RewardFactory(points_cost=100, stock=5)
    services.codes_generate(reward=reward, count=2)
    redemption = services.reward_redeem(member=member, reward=reward)

    def use_or_cancel(index):
        if index == 0:
            services.voucher_use(code=redemption.code)
            return "used"
        services.redemption_cancel(redemption=redemption)
        return "cancelled"

    outcomes = race(2, use_or_cancel)

    # One clean winner and one clean refusal, never a deadlock or another error.
    assert outcomes in (
        Counter({"used": 1, "not_cancellable": 1}),
        Counter({"cancelled": 1, "voucher_not_valid": 1}),
    )
    redemption.refresh_from_db()
    code = reward.codes.get(code=redemption.code)
    reward.refresh_from_db()
    balance = PointsAccount.objects.get(member=member).balance
    if "used" in outcomes:
        assert (redemption.status, code.status, balance, reward.stock) == ("used", "used", 400, 4)
    else:
        assert (redemption.status, code.status, balance) == ("cancelled", "void", 500)
        assert reward.stock == 5


def test_cancelling_while_other_members_redeem_never_hands_out_a_void_code(program, race_round):
    members = MemberFactory.create_batch(6)
    for member in members:
        points_credit(member=member, points=100, reason="Welcome")
    reward = RewardFactory(points_cost=100)
    services.codes_generate(reward=reward, count=6)
    first = services.reward_redeem(member=members[0], reward=reward)

    def act(index):
        if index == 0:
            services.redemption_cancel(redemption=first)
            return "cancelled"
        services.reward_redeem(member=members[index], reward=reward)
        return "redeemed"

    outcomes = race(6, act)

    assert outcomes == Counter({"cancelled": 1, "redeemed": 5})
    codes_handed_out = list(Redemption.objects.exclude(pk=first.pk).values_list("code", flat=True))
    assert first.code not in codes_handed_out and len(set(codes_handed_out)) == 5
    assert reward.codes.get(code=first.code).status == CodeStatus.VOID


def test_a_refund_and_a_redemption_racing_for_the_same_points_keep_the_ledger_whole(
    program, race_round
):
    from django.db.models import Sum

    from loyalty.services import purchase_record, purchase_refund
    from tests.factories import PartnerFactory

    member = MemberFactory()
    purchase = purchase_record(
        partner=PartnerFactory(), external_id="P-1", member=member, amount="100.00"
    ).purchase
    reward = RewardFactory(kind="product", points_cost=100)

    def act(index):
        if index == 0:
            refund = purchase_refund(purchase=purchase, amount="100.00")
            return "refunded" if refund.points_not_recovered == 0 else "refunded_short"
        services.reward_redeem(member=member, reward=reward)
        return "redeemed"

    outcomes = race(2, act)

    assert outcomes in (
        Counter({"refunded": 1, "insufficient_points": 1}),
        Counter({"redeemed": 1, "refunded_short": 1}),
    )
    account = PointsAccount.objects.get(member=member)
    entries = LedgerEntry.objects.filter(account=account)
    assert account.balance == 0
    assert entries.aggregate(total=Sum("points"))["total"] == 0
    assert entries.aggregate(total=Sum("remaining_points"))["total"] == 0
