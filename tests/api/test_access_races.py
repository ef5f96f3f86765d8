"""The request budget per key under real concurrency (PostgreSQL, and Redis as the cache)."""

from collections import Counter

import pytest
from rest_framework.test import APIClient

from tests.concurrency import race
from tests.factories import MemberFactory, PartnerFactory, api_key_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_of_twenty_concurrent_requests_only_the_budget_passes(program, race_round):
    shop = PartnerFactory(name="Webshop", api_requests_per_minute=5)
    customer = MemberFactory()
    _record, key = api_key_for(shop)

    def ask(_index):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        response = client.get(f"/api/v1/members/{customer.member_number}/standing/")
        return str(response.status_code)

    outcomes = race(20, ask)

    assert outcomes == Counter({"200": 5, "429": 15})
