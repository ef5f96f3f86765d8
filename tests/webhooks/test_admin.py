"""Webhooks in the admin: endpoints created through the services (secret shown, unsafe URLs
refused), the test-event and rotation actions, and the delivery log with "resend"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from loyalty.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def add_endpoint(admin_client, url, **extra):
    return admin_client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "partner": PartnerFactory(name="Webshop").pk,
            "url": url,
            "description": "Orders",
            "event_types": ["points.earned", "tier.changed"],
            "is_active": "on",
            **extra,
        },
    )


def test_a_manager_adds_an_endpoint_and_sees_its_secret(admin_client, receiver):
    response = add_endpoint(admin_client, receiver.url)

    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 302
    assert endpoint.event_types == ["points.earned", "tier.changed"]
    assert endpoint.secret.startswith("whsec_")
    page = admin_client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert endpoint.secret in page.content.decode()


def test_an_endpoint_on_a_private_address_is_refused_in_the_form(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False

    response = add_endpoint(admin_client, "https://10.0.0.1/hooks")

    assert response.status_code == 200
    assert "private, loopback or link-local" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_the_test_event_action_sends_a_signed_test_event(
    admin_client, receiver, django_capture_on_commit_callbacks
):
    add_endpoint(admin_client, receiver.url)
    endpoint = WebhookEndpoint.objects.get()
    receiver.secret = endpoint.secret

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:webhooks_webhookendpoint_changelist"),
            {"action": "send_test_event", "_selected_action": [endpoint.pk]},
            follow=True,
        )

    assert response.status_code == 200
    [received] = receiver.delivered
    assert receiver.verify(received)["type"] == "webhook.test"


def test_the_rotate_action_keeps_the_old_secret_valid_for_a_day(admin_client, receiver):
    add_endpoint(admin_client, receiver.url)
    old = WebhookEndpoint.objects.get()

    admin_client.post(
        reverse("admin:webhooks_webhookendpoint_changelist"),
        {"action": "rotate_secret", "_selected_action": [old.pk]},
    )

    rotated = WebhookEndpoint.objects.get()
    assert rotated.secret != old.secret and rotated.previous_secret == old.secret
    assert rotated.previous_secret_expires_at is not None


def test_the_delivery_log_lists_deliveries_and_resends_one(
    admin_client, receiver, django_capture_on_commit_callbacks
):
    add_endpoint(admin_client, receiver.url)
    endpoint = WebhookEndpoint.objects.get()
    receiver.then = 500
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:webhooks_webhookendpoint_changelist"),
            {"action": "send_test_event", "_selected_action": [endpoint.pk]},
        )
    delivery = WebhookDelivery.objects.get()
    log = admin_client.get(
        reverse("admin:webhooks_webhookdelivery_changelist"), {"status__exact": "pending"}
    )
    assert delivery.event_id in log.content.decode()
    assert (
        admin_client.get(
            reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])
        ).status_code
        == 200
    )

    receiver.then = 200
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:webhooks_webhookdelivery_changelist"),
            {"action": "resend", "_selected_action": [delivery.pk]},
        )

    assert [r.answered for r in receiver.requests] == [500, 200]
    assert WebhookDelivery.objects.get().status == "delivered"
