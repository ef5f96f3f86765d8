"""The partner API's access rules, error format, purchases, refunds, batch and idempotency."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from loyalty.models import LedgerEntry, PointsAccount, Purchase
from loyalty.partner_api.models import ApiScope
from tests.api.conftest import client_for
from tests.concurrency import race
from tests.conftest import wait_until
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


def purchase(member, external_id="T-1", amount="42.50", **extra) -> dict:
    return {
        "external_id": external_id,
        "member_number": member.member_number,
        "amount": amount,
        **extra,
    }


# --- access --------------------------------------------------------------------------------


def test_without_a_key_the_answer_is_401_problem_json(program):
    response = APIClient().post("/api/v1/purchases/", {}, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize("kind", ["unknown", "wrong secret", "expired", "revoked", "inactive"])
def test_an_unusable_key_is_401(shop, program, kind):
    record, key = api_key_for(shop)
    if kind == "unknown":
        key = "NoSuchPr.secretsecretsecretsecretsecretse"
    elif kind == "wrong secret":
        key = key.split(".")[0] + ".not-the-secret"
    elif kind == "expired":
        record.expiry_date = timezone.now() - dt.timedelta(minutes=1)
        record.save()
    elif kind == "revoked":
        record.revoked = True
        record.save()
    else:
        shop.is_active = False
        shop.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    response = client.get("/api/v1/members/123/standing/")

    assert response.status_code == 401
    assert response.json()["code"] in {"invalid_key", "key_expired", "partner_inactive"}


def test_a_key_without_the_scope_is_403(shop, program, customer):
    client = client_for(shop, ApiScope.MEMBERS_READ)

    response = client.post("/api/v1/purchases/", purchase(customer), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "missing_scope"
    assert "purchases:write" in response.json()["detail"]
    assert not Purchase.objects.exists()


def test_an_unknown_api_path_is_a_problem_not_an_html_page(api):
    response = api.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM and response.json()["code"] == "not_found"


def test_the_budget_per_key_answers_429_with_retry_after(shop, program, customer):
    shop.api_requests_per_minute = 2
    shop.save()
    client = client_for(shop)

    answers = [client.get(f"/api/v1/members/{customer.member_number}/standing/") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json()["code"] == "throttled"
    assert 1 <= int(answers[2]["Retry-After"]) <= 60


def test_a_wrong_secret_with_a_partners_prefix_spends_none_of_its_budget(shop, program, customer):
    shop.api_requests_per_minute = 2
    shop.save()
    _record, key = api_key_for(shop)
    wrong, right = APIClient(), APIClient()
    wrong.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.split('.')[0]}.not-the-secret")
    right.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    standing = f"/api/v1/members/{customer.member_number}/standing/"

    refused = [wrong.get(standing).status_code for _ in range(5)]
    answers = [right.get(standing).status_code for _ in range(3)]

    assert refused == [401] * 5
    assert answers == [200, 200, 429]


@pytest.mark.parametrize("key", ["no-dot-and-dashes", "p" * 33 + ".secret", "Ünïcode.secret"])
def test_a_key_not_shaped_like_ours_is_401_at_once(program, key, django_assert_num_queries):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    with django_assert_num_queries(0):
        response = client.get("/api/v1/members/123/standing/")

    assert response.status_code == 401 and response.json()["code"] == "invalid_key"


def test_with_the_cache_unreachable_a_purchase_is_recorded_uncounted(
    shop, program, customer, settings, caplog
):
    """Redis down: the budget cannot be counted and the configuration is read from the
    database; the till's purchase goes through rather than failing."""
    client = client_for(shop)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }

    response = client.post("/api/v1/purchases/", purchase(customer), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["balance"] == 42
    assert Purchase.objects.filter(member=customer).count() == 1
    warned = {record.getMessage() for record in caplog.records}
    assert "the cache is unreachable: API requests are not counted against budgets" in warned
    assert "the cache is unreachable: configuration read from the database" in warned


# --- purchases -----------------------------------------------------------------------------


def test_posting_a_purchase_answers_points_balance_and_tier(api, customer):
    response = api.post(
        "/api/v1/purchases/",
        purchase(customer, lines=[{"amount": "30.00", "category": "shoes"}, {"amount": "12.50"}]),
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True and body["balance"] == 42
    assert body["purchase"]["points_earned"] == 42
    assert body["purchase"]["member_number"] == customer.member_number
    assert [line["category"] for line in body["purchase"]["breakdown"]["lines"]] == ["shoes", ""]


def test_the_same_purchase_again_is_answered_with_the_first_and_a_conflict_is_409(api, customer):
    first = api.post("/api/v1/purchases/", purchase(customer), format="json")
    again = api.post("/api/v1/purchases/", purchase(customer), format="json")
    other = api.post("/api/v1/purchases/", purchase(customer, amount="1.00"), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["created"] is False
    assert again.json()["purchase"] == first.json()["purchase"]
    assert other.status_code == 409 and other.json()["code"] == "duplicate_purchase_conflict"
    assert LedgerEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"channel": "fax"}, "channel"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"store": "s" * 101}, "store"),
        ({"purchased_at": "yesterday"}, "purchased_at"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(api, customer, change, field):
    response = api.post("/api/v1/purchases/", {**purchase(customer), **change}, format="json")

    assert response.status_code == 400, response.json()
    assert response["Content-Type"] == PROBLEM
    assert field in response.json()["errors"]
    assert not Purchase.objects.exists()


def test_an_unknown_member_is_404_member_not_found(api, customer):
    response = api.post(
        "/api/v1/purchases/", {**purchase(customer), "member_number": "999"}, format="json"
    )

    assert response.status_code == 404 and response.json()["code"] == "member_not_found"


def test_balance_points_and_tier_cannot_be_set_through_the_api(api, customer):
    response = api.post(
        "/api/v1/purchases/",
        {**purchase(customer), "points_earned": 10_000, "balance": 10_000, "tier": "Gold"},
        format="json",
    )

    assert response.status_code == 201
    assert PointsAccount.objects.get(member=customer).balance == 42


# --- other partners' objects: 404, never 403 -------------------------------------------------


def test_another_partners_purchase_and_refund_answer_404(shop, other_shop, program, customer):
    mine = client_for(shop)
    theirs = client_for(other_shop)
    mine.post("/api/v1/purchases/", purchase(customer), format="json")

    assert theirs.get("/api/v1/purchases/T-1/").status_code == 404
    refund = theirs.post(
        "/api/v1/purchases/T-1/refunds/", {"refund_id": "R1", "amount": "1.00"}, format="json"
    )
    assert refund.status_code == 404 and refund.json()["code"] == "not_found"
    assert mine.get("/api/v1/purchases/T-1/").status_code == 200


def test_a_refund_reverses_points_and_is_idempotent_by_its_id(api, customer):
    api.post("/api/v1/purchases/", purchase(customer, amount="100.00"), format="json")
    body = {"refund_id": "R-1", "amount": "25.00"}

    first = api.post("/api/v1/purchases/T-1/refunds/", body, format="json")
    again = api.post("/api/v1/purchases/T-1/refunds/", body, format="json")

    assert first.status_code == again.status_code == 201
    assert first.json()["points_reversed"] == 25 and first.json()["balance"] == 75
    assert again.json()["points_reversed"] == 25
    assert PointsAccount.objects.get(member=customer).balance == 75


# --- batch ---------------------------------------------------------------------------------


def test_a_batch_answers_per_item_in_order(api, customer):
    api.post("/api/v1/purchases/", purchase(customer, external_id="B-0"), format="json")
    items = [
        purchase(customer, external_id="B-0"),  # already there
        purchase(customer, external_id="B-1", amount="10.00"),
        purchase(customer, external_id="B-2", amount="nope"),
        {**purchase(customer, external_id="B-3"), "member_number": "999"},
    ]

    response = api.post("/api/v1/purchases/batch/", {"purchases": items}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert (body["created"], body["replayed"], body["failed"]) == (1, 1, 2)
    assert [item["status"] for item in body["items"]] == ["replayed", "created", "error", "error"]
    assert body["items"][2]["error"]["errors"]["amount"]
    assert body["items"][3]["error"]["code"] == "member_not_found"


def test_a_batch_of_more_than_1000_is_refused(api, customer):
    items = [purchase(customer, external_id=f"X{i}") for i in range(1001)]

    response = api.post("/api/v1/purchases/batch/", {"purchases": items}, format="json")

    assert response.status_code == 400 and not Purchase.objects.exists()


# --- Idempotency-Key -----------------------------------------------------------------------


def test_the_same_idempotency_key_replays_and_another_body_is_422(api, customer):
    headers = {"HTTP_IDEMPOTENCY_KEY": "k-1"}
    first = api.post("/api/v1/purchases/", purchase(customer), format="json", **headers)
    replay = api.post("/api/v1/purchases/", purchase(customer), format="json", **headers)
    reused = api.post(
        "/api/v1/purchases/", purchase(customer, external_id="T-2"), format="json", **headers
    )

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert Purchase.objects.count() == 1


def test_an_error_answer_is_replayed_too(api, customer):
    headers = {"HTTP_IDEMPOTENCY_KEY": "k-2"}
    body = {**purchase(customer), "member_number": "999"}

    first = api.post("/api/v1/purchases/", body, format="json", **headers)
    again = api.post("/api/v1/purchases/", body, format="json", **headers)

    assert first.status_code == again.status_code == 404
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_posts_with_one_key_record_once_and_replay_nine(
    shop, program, customer, race_round
):
    _record, key = api_key_for(shop)

    def post(_index):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}", HTTP_IDEMPOTENCY_KEY="same")
        response = client.post("/api/v1/purchases/", purchase(customer), format="json")
        replayed = response.get("Idempotent-Replayed") == "true"
        return f"{response.status_code}{' replay' if replayed else ''}"

    outcomes = race(10, post)

    assert outcomes == Counter({"201": 1, "201 replay": 9})
    assert Purchase.objects.count() == 1 and LedgerEntry.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_key_while_the_first_request_still_runs_is_409(shop, program, customer):
    import threading

    from django.db import connection, transaction

    from loyalty.services import points_credit

    points_credit(member=customer, points=1, reason="Welcome")  # the account row exists
    _record, key = api_key_for(shop)
    locked, release = threading.Event(), threading.Event()

    def hold_the_account():  # keeps the first request waiting inside its transaction
        try:
            with transaction.atomic():
                PointsAccount.objects.select_for_update().get(member=customer)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    answers: dict[str, object] = {}

    def post(name):
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}", HTTP_IDEMPOTENCY_KEY="slow")
            answers[name] = client.post("/api/v1/purchases/", purchase(customer), format="json")
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_account)
    holder.start()
    locked.wait(timeout=10)
    first = threading.Thread(target=post, args=("first",))
    first.start()
    # The first request has claimed the key and now waits for the account row's lock.
    wait_until(_a_backend_waits_for_a_lock, timeout=20, interval=0.05)
    post("second")
    release.set()
    first.join(timeout=30)
    holder.join(timeout=30)

    assert answers["second"].status_code == 409
    assert answers["second"].json()["code"] == "idempotency_request_in_progress"
    assert answers["first"].status_code == 201
    assert Purchase.objects.count() == 1


def _a_backend_waits_for_a_lock() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_a_batch_of_replays_reads_their_standings_in_one_query(
    api, customer, django_assert_max_num_queries
):
    items = [purchase(customer, external_id=f"R{number}", amount="5.00") for number in range(20)]
    api.post("/api/v1/purchases/batch/", {"purchases": items}, format="json")

    with django_assert_max_num_queries(12):  # not one or two per replayed item
        response = api.post("/api/v1/purchases/batch/", {"purchases": items}, format="json")

    body = response.json()
    assert body["replayed"] == 20
    assert {item["result"]["balance"] for item in body["items"]} == {100}
