"""API keys in the admin: shown once at creation, hashed at rest, revoked by an action."""

import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from loyalty.partner_api.models import PartnerAPIKey

pytestmark = pytest.mark.django_db


def test_a_key_made_in_the_admin_is_shown_once_and_works(admin_client, shop, program, customer):
    response = admin_client.post(
        reverse("admin:partner_api_partnerapikey_add"),
        {"partner": shop.pk, "name": "Till 1", "scopes": ["members:read"]},
        follow=True,
    )

    text = response.content.decode()
    key = re.search(r"is: ([A-Za-z0-9]{8}\.[A-Za-z0-9]{32})", text).group(1)
    record = PartnerAPIKey.objects.get()
    assert record.prefix == key.split(".")[0] and key not in record.hashed_key
    assert record.scopes == ["members:read"] and record.partner == shop
    listing = admin_client.get(
        reverse("admin:partner_api_partnerapikey_changelist")
    ).content.decode()
    assert record.prefix in listing and key not in listing
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get(f"/api/v1/members/{customer.member_number}/standing/").status_code == 200


def test_a_revoked_key_is_refused(admin_client, shop, program, customer):
    from tests.factories import api_key_for

    record, key = api_key_for(shop)

    admin_client.post(
        reverse("admin:partner_api_partnerapikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [record.pk]},
    )

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get(f"/api/v1/members/{customer.member_number}/standing/").status_code == 401
    assert PartnerAPIKey.objects.get().revoked


def test_a_key_needs_a_scope(admin_client, shop):
    response = admin_client.post(
        reverse("admin:partner_api_partnerapikey_add"), {"partner": shop.pk, "name": "Till"}
    )

    assert response.status_code == 200 and "scopes" in response.context["adminform"].form.errors
    assert not PartnerAPIKey.objects.exists()
