"""Broken object-level authorisation: every endpoint that takes the id of a partner's object
answers another partner 404 (never 403: no existence leak) and changes nothing; and no
endpoint lets a partner set balance, points, status, tier or owner."""

from __future__ import annotations

import pytest

from loyalty.models import LedgerEntry, PartnerKind, PointsAccount, Purchase, Refund
from loyalty.services import points_credit
from members.models import MemberStatus
from rewards.models import CodeStatus, Redemption, RedemptionStatus, VoucherCode
from rewards.services import codes_generate
from tests.api.conftest import client_for
from tests.factories import PartnerFactory, RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(db):
    return PartnerFactory(name="Owner", kind=PartnerKind.REWARD_SUPPLIER)


@pytest.fixture
def intruder(db):
    return PartnerFactory(name="Intruder", kind=PartnerKind.REWARD_SUPPLIER)


@pytest.fixture
def objects(owner, program, customer):
    """The owner's purchase (with a refund), redemption and issued voucher, made through the
    owner's own key."""
    client = client_for(owner)
    points_credit(member=customer, points=1000, reason="Welcome")
    reward = RewardFactory(points_cost=100, partner=owner)
    codes_generate(reward=reward, count=2)
    client.post(
        "/api/v1/purchases/",
        {"external_id": "T-1", "member_number": customer.member_number, "amount": "50.00"},
        format="json",
    )
    client.post(
        "/api/v1/purchases/T-1/refunds/", {"refund_id": "R-1", "amount": "5.00"}, format="json"
    )
    redemption_id = client.post(
        "/api/v1/redemptions/",
        {"member_number": customer.member_number, "reward": reward.pk},
        format="json",
    ).json()["id"]
    return {"redemption": Redemption.objects.get(pk=redemption_id)}


def _state():
    return (
        list(Purchase.objects.values_list("pk", "refunded_amount")),
        list(Refund.objects.values_list("pk", "amount")),
        list(Redemption.objects.values_list("pk", "status")),
        list(VoucherCode.objects.values_list("pk", "status")),
        list(LedgerEntry.objects.values_list("pk", flat=True)),
    )


ENDPOINTS = [
    ("get", "/api/v1/purchases/T-1/", None),
    ("post", "/api/v1/purchases/T-1/refunds/", {"refund_id": "R-2", "amount": "1.00"}),
    ("post", "/api/v1/purchases/T-1/refunds/", {"refund_id": "R-1", "amount": "5.00"}),
    ("get", "/api/v1/redemptions/{redemption}/", None),
    ("post", "/api/v1/redemptions/{redemption}/cancel/", None),
    ("post", "/api/v1/vouchers/validate/", {"code": "{code}"}),
    ("post", "/api/v1/vouchers/use/", {"code": "{code}"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_another_partners_object_answers_404_and_changes_nothing(
    intruder, objects, method, path, body
):
    redemption = objects["redemption"]
    url = path.format(redemption=redemption.pk)
    if body is not None:
        body = {key: value.format(code=redemption.code) for key, value in body.items()}
    before = _state()

    response = getattr(client_for(intruder), method)(url, body, format="json")

    assert response.status_code == 404, (url, response.json())
    assert response["Content-Type"] == "application/problem+json"
    assert _state() == before


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_the_owner_reaches_each_of_those_objects(owner, objects, method, path, body):
    redemption = objects["redemption"]
    url = path.format(redemption=redemption.pk)
    if body is not None:
        body = {key: value.format(code=redemption.code) for key, value in body.items()}

    response = getattr(client_for(owner), method)(url, body, format="json")

    assert response.status_code in (200, 201), (url, response.json())


# --- mass assignment -----------------------------------------------------------------------

SMUGGLED = {
    "balance": 99_999,
    "points": 99_999,
    "points_earned": 99_999,
    "status": "blocked",
    "tier": "Gold",
    "partner": 1,
    "member": 1,
    "id": 1,
}


def test_nothing_smuggled_into_any_write_takes_effect(owner, objects, customer):
    client = client_for(owner)
    redemption = objects["redemption"]
    balance = PointsAccount.objects.get(member=customer).balance
    number = customer.member_number

    client.post(
        "/api/v1/purchases/",
        {"external_id": "T-2", "member_number": number, "amount": "10.00", **SMUGGLED},
        format="json",
    )
    client.post(
        "/api/v1/purchases/T-2/refunds/",
        {"refund_id": "R-9", "amount": "10.00", **SMUGGLED},
        format="json",
    )
    client.post(
        f"/api/v1/members/{number}/consent/",
        {"channel": "email", "granted": True, **SMUGGLED},
        format="json",
    )
    client.post(f"/api/v1/redemptions/{redemption.pk}/cancel/", SMUGGLED, format="json")

    customer.refresh_from_db()
    assert customer.status == MemberStatus.ACTIVE
    assert PointsAccount.objects.get(member=customer).balance == balance + 100  # the cancel
    assert Purchase.objects.get(external_id="T-2").points_earned == 10
    redemption.refresh_from_db()
    assert redemption.status == RedemptionStatus.CANCELLED and redemption.partner == owner
    assert VoucherCode.objects.filter(status=CodeStatus.AVAILABLE).count() == 1
