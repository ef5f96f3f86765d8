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


def test_two_hundred_redemptions_of_a_stock_of_fifty_give_exactly_fifty(program):
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


def test_a_double_click_with_points_for_one_gives_one(program):
    member = MemberFactory()
    points_credit(member=member, points=150, reason="Welcome")
    reward = RewardFactory(kind="product", points_cost=100)

    outcomes = race(2, lambda i: services.reward_redeem(member=member, reward=reward))

    assert outcomes == Counter({"ok": 1, "insufficient_points": 1})
    assert Redemption.objects.count() == 1
    assert PointsAccount.objects.get(member=member).balance == 50


def test_concurrent_use_of_one_voucher_succeeds_once(program):
    member = MemberFactory()
    points_credit(member=member, points=500, reason="Welcome")
    reward = RewardFactory()
    services.codes_generate(reward=reward, count=1)
    redemption = services.reward_redeem(member=member, reward=reward)

    outcomes = race(8, lambda i: services.voucher_use(code=redemption.code))

    assert outcomes == Counter({"ok": 1, "voucher_used": 7})
