"""Rewards on the partner API: the catalogue, what a member can redeem, redemptions (create,
read, cancel) owned by the partner whose key made them, and voucher codes for suppliers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from loyalty.models import PartnerKind, PointsAccount
from loyalty.partner_api.models import ApiScope
from loyalty.services import points_credit
from rewards.models import CodeStatus, Redemption, RedemptionStatus, VoucherCode
from rewards.services import codes_generate, reward_redeem
from tests.api.conftest import client_for
from tests.factories import PartnerFactory, RewardFactory

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def rich(customer, program):
    points_credit(member=customer, points=1000, reason="Welcome")
    return customer


@pytest.fixture
def supplier(db):
    return PartnerFactory(name="Cinema", kind=PartnerKind.REWARD_SUPPLIER)


@pytest.fixture
def cinema_ticket(supplier):
    reward = RewardFactory(name_en="Cinema ticket", points_cost=300, partner=supplier)
    codes_generate(reward=reward, count=3)
    return reward


def balance(member) -> int:
    return PointsAccount.objects.get(member=member).balance


def redeem(client, member, reward, **headers):
    return client.post(
        "/api/v1/redemptions/",
        {"member_number": member.member_number, "reward": reward.pk},
        format="json",
        **headers,
    )


# --- catalogue -----------------------------------------------------------------------------


def test_the_catalogue_lists_active_rewards_without_internal_cost(api):
    active = RewardFactory(name_en="Mug")
    RewardFactory(is_active=False)
    RewardFactory(valid_until=timezone.now() - dt.timedelta(days=1))

    response = api.get("/api/v1/rewards/")

    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [active.pk]
    assert "cost_eur" not in response.json()["results"][0]
    assert "stock" not in response.json()["results"][0]


def test_a_members_rewards_are_split_into_redeemable_now_and_the_rest(api, rich):
    cheap = RewardFactory(points_cost=500)
    dear = RewardFactory(points_cost=1500)

    response = api.get(f"/api/v1/members/{rich.member_number}/rewards/")

    body = response.json()
    assert response.status_code == 200
    assert [item["reward"]["id"] for item in body["redeemable_now"]] == [cheap.pk]
    assert [item["reward"]["id"] for item in body["not_redeemable_now"]] == [dear.pk]
    assert body["not_redeemable_now"][0]["points_missing"] == 500


def test_reading_rewards_needs_rewards_read(shop, program, rich):
    client = client_for(shop, ApiScope.MEMBERS_READ)

    assert client.get("/api/v1/rewards/").status_code == 403
    assert client.get(f"/api/v1/members/{rich.member_number}/rewards/").status_code == 403


# --- redemptions ---------------------------------------------------------------------------


def test_redeeming_debits_points_and_belongs_to_the_partner(api, shop, rich, cinema_ticket):
    response = redeem(api, rich, cinema_ticket)

    assert response.status_code == 201, response.json()
    body = response.json()
    redemption = Redemption.objects.get()
    assert body["id"] == redemption.pk and body["status"] == "issued"
    assert body["member_number"] == rich.member_number and body["code"] == redemption.code
    assert redemption.partner == shop
    assert balance(rich) == 700


def test_a_redemption_without_enough_points_is_409_and_changes_nothing(api, customer, program):
    reward = RewardFactory(points_cost=100, kind="product")

    response = redeem(api, customer, reward)

    assert response.status_code == 409 and response.json()["code"] == "insufficient_points"
    assert not Redemption.objects.exists()


def test_an_unknown_reward_is_404_reward_not_found(api, rich):
    response = api.post(
        "/api/v1/redemptions/",
        {"member_number": rich.member_number, "reward": 999_999},
        format="json",
    )

    assert response.status_code == 404 and response.json()["code"] == "reward_not_found"


def test_points_status_and_partner_cannot_be_set_when_redeeming(
    api, shop, other_shop, rich, cinema_ticket
):
    response = api.post(
        "/api/v1/redemptions/",
        {
            "member_number": rich.member_number,
            "reward": cinema_ticket.pk,
            "points": 1,
            "status": "used",
            "partner": other_shop.pk,
            "balance": 99_999,
        },
        format="json",
    )

    assert response.status_code == 201
    redemption = Redemption.objects.get()
    assert (redemption.points, redemption.status) == (300, RedemptionStatus.ISSUED)
    assert redemption.partner == shop and balance(rich) == 700


def test_a_retried_redemption_with_the_same_idempotency_key_redeems_once(api, rich, cinema_ticket):
    first = redeem(api, rich, cinema_ticket, HTTP_IDEMPOTENCY_KEY="r-1")
    again = redeem(api, rich, cinema_ticket, HTTP_IDEMPOTENCY_KEY="r-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Redemption.objects.count() == 1 and balance(rich) == 700


def test_a_partner_reads_and_cancels_its_redemption(api, rich, cinema_ticket):
    redemption_id = redeem(api, rich, cinema_ticket).json()["id"]

    read = api.get(f"/api/v1/redemptions/{redemption_id}/")
    cancel = api.post(f"/api/v1/redemptions/{redemption_id}/cancel/")
    again = api.post(f"/api/v1/redemptions/{redemption_id}/cancel/")

    assert read.status_code == 200 and read.json()["status"] == "issued"
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    assert again.status_code == 409 and again.json()["code"] == "not_cancellable"
    assert balance(rich) == 1000


def test_a_portal_redemption_is_not_visible_to_any_partner(api, rich, cinema_ticket):
    portal = reward_redeem(member=rich, reward=cinema_ticket)

    read = api.get(f"/api/v1/redemptions/{portal.pk}/")
    cancel = api.post(f"/api/v1/redemptions/{portal.pk}/cancel/")

    assert read.status_code == cancel.status_code == 404
    assert read.json()["code"] == "redemption_not_found"
    portal.refresh_from_db()
    assert portal.status == RedemptionStatus.ISSUED and balance(rich) == 700


def test_redeeming_needs_redemptions_write(shop, program, rich, cinema_ticket):
    response = redeem(client_for(shop, ApiScope.REWARDS_READ), rich, cinema_ticket)

    assert response.status_code == 403 and response.json()["code"] == "missing_scope"
    assert not Redemption.objects.exists()


# --- vouchers ------------------------------------------------------------------------------


@pytest.fixture
def issued(rich, cinema_ticket):
    return reward_redeem(member=rich, reward=cinema_ticket)


def test_the_supplier_validates_and_uses_its_voucher(supplier, issued):
    client = client_for(supplier, ApiScope.VOUCHERS_VALIDATE)
    typed = {"code": "-".join([issued.code[:4].lower(), issued.code[4:]])}

    valid = client.post("/api/v1/vouchers/validate/", typed, format="json")
    used = client.post("/api/v1/vouchers/use/", typed, format="json")

    assert valid.status_code == 200 and valid.json()["status"] == "issued"
    assert valid.json()["reward"] == issued.reward_id and "member_number" not in valid.json()
    assert used.status_code == 200 and used.json()["status"] == "used"
    assert used.json()["used_at"]
    assert VoucherCode.objects.get(code=issued.code).status == CodeStatus.USED


def test_a_second_use_is_409_voucher_used_with_when(supplier, issued):
    client = client_for(supplier, ApiScope.VOUCHERS_VALIDATE)
    first = client.post("/api/v1/vouchers/use/", {"code": issued.code}, format="json")

    second = client.post("/api/v1/vouchers/use/", {"code": issued.code}, format="json")

    assert second.status_code == 409 and second.json()["code"] == "voucher_used"
    when = dt.datetime.fromisoformat
    assert when(second.json()["used_at"]) == when(first.json()["used_at"])


def test_a_retried_use_with_the_same_idempotency_key_replays_the_first_answer(supplier, issued):
    client = client_for(supplier, ApiScope.VOUCHERS_VALIDATE)
    body = {"code": issued.code}

    first = client.post("/api/v1/vouchers/use/", body, format="json", HTTP_IDEMPOTENCY_KEY="u")
    again = client.post("/api/v1/vouchers/use/", body, format="json", HTTP_IDEMPOTENCY_KEY="u")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"


def test_another_suppliers_code_answers_exactly_like_a_code_that_does_not_exist(issued, program):
    stranger = client_for(
        PartnerFactory(name="Theatre", kind=PartnerKind.REWARD_SUPPLIER),
        ApiScope.VOUCHERS_VALIDATE,
    )

    theirs = stranger.post("/api/v1/vouchers/validate/", {"code": issued.code}, format="json")
    none = stranger.post("/api/v1/vouchers/validate/", {"code": "NOSUCHCODE1"}, format="json")
    use = stranger.post("/api/v1/vouchers/use/", {"code": issued.code}, format="json")

    assert theirs.status_code == none.status_code == use.status_code == 404
    assert theirs.json() == none.json() and theirs.json()["code"] == "voucher_invalid"
    assert VoucherCode.objects.get(code=issued.code).status == CodeStatus.ISSUED


def test_vouchers_need_the_vouchers_validate_scope(supplier, issued):
    client = client_for(supplier, ApiScope.REDEMPTIONS_WRITE)

    response = client.post("/api/v1/vouchers/use/", {"code": issued.code}, format="json")

    assert response.status_code == 403
    assert VoucherCode.objects.get(code=issued.code).status == CodeStatus.ISSUED
