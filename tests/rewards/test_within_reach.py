"""'Within reach' in the catalogue lists only rewards the member may redeem once they have the
points: not those another tier, a segment, stock, a limit or the validity window keeps away."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from rewards import services
from tests.factories import RewardFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def within_reach(client) -> list[str]:
    response = client.get(reverse("rewards:catalogue"))
    return sorted(item.reward.name_en for item in response.context["locked"])


def test_only_rewards_the_member_may_redeem_with_more_points_are_within_reach(member_client):
    gold = TierFactory(name="Gold", rank=3, threshold=Decimal("2000"))
    RewardFactory(kind="product", points_cost=800, name_en="Weekend away")
    RewardFactory(kind="product", points_cost=800, name_en="Gold lounge", minimum_tier=gold)
    RewardFactory(kind="product", points_cost=800, name_en="Sold out", stock=0)
    soon = timezone.now() + dt.timedelta(days=3)
    RewardFactory(kind="product", points_cost=800, name_en="Not yet", valid_from=soon)

    assert within_reach(member_client) == ["Weekend away"]


def test_a_reward_whose_limit_is_reached_is_not_within_reach(member_client):
    reward = RewardFactory(kind="product", points_cost=300, name_en="Once", limit_per_member=1)
    services.reward_redeem(member=member_client.member, reward=reward)

    assert within_reach(member_client) == []
    page = member_client.get(reverse("rewards:catalogue")).content.decode()
    assert "Within reach" not in page
