"""Webhook delivery across processes: never sent twice at once, scheduled every minute, and
with a real worker, delivered after the broker was down while the purchase was posted."""

from __future__ import annotations

from collections import Counter

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from loyalty.models import Purchase
from loyalty.outbox import services as outbox
from loyalty.outbox.models import OutboxMessage
from loyalty.services import purchase_record
from loyalty.webhooks import services
from loyalty.webhooks.models import WebhookDelivery, WebhookEvent
from tests.concurrency import race
from tests.conftest import broker_unreachable, wait_until
from tests.factories import MemberFactory, PartnerFactory


@pytest.mark.django_db
def test_due_deliveries_are_tried_every_minute_by_celery_beat():
    task = PeriodicTask.objects.get(task="loyalty.webhooks.tasks.deliver_due")

    assert task.enabled and (task.interval.every, task.interval.period) == (1, "minutes")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_workers_trying_one_delivery_at_once_send_it_once(receiver, race_round):
    endpoint = services.endpoint_create(partner=PartnerFactory(), url=receiver.url)
    receiver.secret = endpoint.secret
    event = WebhookEvent.objects.create(type="points.earned", payload={"type": "points.earned"})
    delivery = WebhookDelivery.objects.create(event=event, endpoint=endpoint)

    outcomes = race(10, lambda _i: services.delivery_attempt(delivery_id=delivery.pk))

    assert outcomes == Counter({"delivered": 1, "skipped": 9})
    assert len(receiver.requests) == 1 and len(receiver.delivered) == 1
    assert WebhookDelivery.objects.get().attempts == 1


@pytest.mark.celery_worker
def test_a_purchase_posted_while_redis_is_down_is_recorded_and_its_webhook_delivered_later(
    program, celery_worker, receiver
):
    partner = PartnerFactory(name="Webshop")
    endpoint = services.endpoint_create(
        partner=partner, url=receiver.url, event_types=["points.earned"]
    )
    receiver.secret = endpoint.secret
    member = MemberFactory()

    with broker_unreachable():
        result = purchase_record(partner=partner, external_id="R1", member=member, amount="40.00")
        assert outbox._hand_off_thread.wait_idle(timeout=60)
        assert Purchase.objects.filter(pk=result.purchase.pk).exists()
        assert WebhookDelivery.objects.get().status == "pending"
        assert receiver.requests == []

    assert outbox.outbox_sweep(now=timezone.now() + outbox.SWEEP_GRACE) >= 1
    wait_until(lambda: receiver.delivered, timeout=60)
    wait_until(lambda: WebhookDelivery.objects.get().status == "delivered")

    [received] = receiver.requests
    payload = receiver.verify(received)
    assert payload["type"] == "points.earned"
    assert payload["data"]["member_number"] == member.member_number
    assert payload["data"]["points"] == result.purchase.points_earned
    assert not OutboxMessage.objects.filter(dispatched_at__isnull=True).exists()
