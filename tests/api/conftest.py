"""A partner's API client: DRF's test client with the partner's key in the header."""

import pytest
from rest_framework.test import APIClient

from tests.factories import MemberFactory, PartnerFactory, api_key_for


@pytest.fixture
def shop(db):
    return PartnerFactory(name="Webshop")


@pytest.fixture
def other_shop(db):
    return PartnerFactory(name="Other shop")


def client_for(partner, *scopes: str) -> APIClient:
    _record, key = api_key_for(partner, *scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def api(shop, program):
    return client_for(shop)


@pytest.fixture
def customer(db):
    return MemberFactory(first_name="Noor", language="en")
