"""The member's reward pages: catalogue, confirmation, redeem, my rewards with the voucher."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.services import points_credit
from rewards import codes, services
from rewards.models import Redemption
from tests.factories import MemberFactory, RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def test_the_catalogue_separates_what_can_be_redeemed_from_what_is_in_reach(member_client):
    cheap = RewardFactory(kind="product", points_cost=200, name_en="Coffee")
    dear = RewardFactory(kind="product", points_cost=800, name_en="Weekend away")

    response = member_client.get(reverse("rewards:catalogue"))

    assert [item.reward for item in response.context["available"]] == [cheap]
    assert [item.reward for item in response.context["locked"]] == [dear]
    assert b"You need 300 more points." in response.content


def test_redeeming_asks_for_confirmation_then_shows_the_voucher(member_client):
    reward = RewardFactory(points_cost=200, name_en="Cinema ticket")
    services.codes_generate(reward=reward, count=1)
    url = reverse("rewards:redeem", args=[reward.pk])

    confirm = member_client.get(url)
    assert b"This costs 200" in confirm.content and not Redemption.objects.exists()

    response = member_client.post(url, follow=True)

    redemption = Redemption.objects.get()
    assert response.redirect_chain[-1][0] == reverse("rewards:redemption", args=[redemption.pk])
    assert codes.display(redemption.code).encode() in response.content
    assert b"<svg" in response.content  # the QR code


def test_a_refusal_is_shown_and_changes_nothing(member_client):
    reward = RewardFactory(kind="product", points_cost=900)

    response = member_client.post(reverse("rewards:redeem", args=[reward.pk]), follow=True)

    assert b"900 points needed, 500 available." in response.content
    assert not Redemption.objects.exists()


def test_members_see_only_their_own_redemptions(member_client):
    other = MemberFactory()
    points_credit(member=other, points=500, reason="Welcome")
    theirs = services.reward_redeem(member=other, reward=RewardFactory(kind="product"))

    assert member_client.get(reverse("rewards:redemption", args=[theirs.pk])).status_code == 404


def test_my_rewards_has_a_constant_number_of_queries(member_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert member_client.get(reverse("rewards:mine")).status_code == 200
        return len(captured)

    points_credit(member=member_client.member, points=5000, reason="More")
    services.reward_redeem(member=member_client.member, reward=RewardFactory(kind="product"))
    few = queries()
    for _ in range(5):
        services.reward_redeem(member=member_client.member, reward=RewardFactory(kind="product"))
    assert queries() == few


def test_the_catalogue_has_a_constant_number_of_queries(member_client):
    from segmentation.models import RuleSegment

    segment = RuleSegment.objects.create(
        name="All", rule={"field": "language", "op": "in", "value": ["en"]}
    )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert member_client.get(reverse("rewards:catalogue")).status_code == 200
        return len(captured)

    RewardFactory(kind="product", limit_per_member=1).segments.add(segment)
    few = queries()
    for _ in range(6):
        RewardFactory(kind="product", limit_per_member=2).segments.add(segment)
    assert queries() == few
