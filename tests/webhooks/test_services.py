"""Webhooks from real service calls to a real receiver that verifies them with the published
`standardwebhooks` library: recorded with the change, signed per Standard Webhooks 1.0, retried
with backoff until delivered once, failed and the endpoint disabled after about a day."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks.webhooks import WebhookVerificationError

from loyalty import events
from loyalty.outbox.models import OutboxMessage
from loyalty.services import purchase_record
from loyalty.webhooks import services
from loyalty.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from members.services import consent_change
from tests.conftest import message_text
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db


def endpoint_for(receiver, *, event_types=("points.earned",), contact_email="") -> WebhookEndpoint:
    partner = PartnerFactory(name="Webshop", contact_email=contact_email)
    endpoint = services.endpoint_create(partner=partner, url=receiver.url, event_types=event_types)
    receiver.secret = endpoint.secret
    return endpoint


def buy(partner, member, external_id="P1", amount="25.00"):
    return purchase_record(partner=partner, external_id=external_id, member=member, amount=amount)


def run_due_after(delay: dt.timedelta, traveller) -> int:
    """Let `delay` pass and run the periodic task once."""
    traveller.shift(delay)
    return services.deliver_due()


# --- recording and signing ------------------------------------------------------------------


def test_a_purchase_reaches_the_partner_signed_with_the_member_number_not_internal_ids(
    program, member, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver)

    with django_capture_on_commit_callbacks(execute=True):
        buy(endpoint.partner, member, amount="25.00")

    [received] = receiver.requests
    payload = receiver.verify(received)
    assert received.answered == 200
    assert payload["type"] == "points.earned"
    assert payload["data"]["member_number"] == member.member_number
    assert payload["data"]["points"] == 25
    assert "member_id" not in payload["data"]
    assert received.headers["webhook-id"].startswith("msg_")
    assert received.headers["webhook-signature"].startswith("v1,")
    assert abs(int(received.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.event_id == received.headers["webhook-id"]


def test_the_event_and_its_delivery_are_recorded_in_the_transaction_of_the_change(
    program, member, receiver
):
    endpoint = endpoint_for(receiver)

    buy(endpoint.partner, member)  # not committed yet: nothing is sent

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.endpoint == endpoint
    assert OutboxMessage.objects.filter(
        task="loyalty.webhooks.tasks.deliver", args=[delivery.pk]
    ).exists()
    assert receiver.requests == []


def test_an_endpoint_gets_only_the_event_types_it_subscribes_to(
    program, member, receiver, django_capture_on_commit_callbacks
):
    consent = endpoint_for(receiver, event_types=["consent.changed"])

    with django_capture_on_commit_callbacks(execute=True):
        buy(consent.partner, member)
        consent_change(member=member, granted=True, source="portal")

    [received] = receiver.requests
    payload = receiver.verify(received)
    assert payload["type"] == "consent.changed"
    assert payload["data"]["granted"] is True
    assert payload["data"]["member_number"] == member.member_number
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["consent.changed"]


def test_with_no_endpoint_a_domain_event_costs_no_query_and_records_nothing(
    program, member, django_assert_num_queries
):
    event = events.DomainEvent(name="points.earned", member_id=member.pk, data={"points": 5})
    services.on_domain_event(event)  # the first one reads who listens, then it is cached

    with django_assert_num_queries(0):
        services.on_domain_event(event)

    assert not WebhookEvent.objects.exists() and not WebhookDelivery.objects.exists()


def test_a_new_endpoint_is_heard_at_once_although_who_listens_is_cached(program, member, receiver):
    services.on_domain_event(events.DomainEvent(name="points.earned", member_id=member.pk))
    endpoint_for(receiver)

    services.on_domain_event(events.DomainEvent(name="points.earned", member_id=member.pk))

    assert WebhookDelivery.objects.count() == 1


def test_costly_events_are_worked_out_only_while_an_endpoint_wants_them(program, receiver):
    assert not events.has_subscribers("segment.changed")

    endpoint_for(receiver, event_types=["segment.changed"])

    assert events.has_subscribers("segment.changed")
    assert not events.has_subscribers("points.adjusted")  # not a webhook event


@pytest.mark.parametrize(
    "event_types", [["points.earned", "points.stolen"], ["points.adjusted"], "points.earned"]
)
def test_an_unknown_event_type_is_refused_and_nothing_is_created(program, event_types):
    with pytest.raises(services.UnknownEventType):
        services.endpoint_create(
            partner=PartnerFactory(), url="http://127.0.0.1:9/", event_types=event_types
        )

    assert not WebhookEndpoint.objects.exists()


# --- retries ---------------------------------------------------------------------------------


def test_a_receiver_down_for_a_while_gets_the_event_later_exactly_once(
    program, member, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver)
    receiver.statuses = [500, 503, 502]  # down for the first three attempts

    with time_machine.travel(timezone.now(), tick=True) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            buy(endpoint.partner, member)
        assert services.deliver_due() == 0  # not due yet: the first retry waits about 5 s
        assert run_due_after(dt.timedelta(seconds=6), traveller) == 0
        assert run_due_after(dt.timedelta(minutes=6), traveller) == 0
        assert run_due_after(dt.timedelta(minutes=36), traveller) == 1
        for _later in range(3):
            assert run_due_after(dt.timedelta(hours=11), traveller) == 0

    assert [r.answered for r in receiver.requests] == [500, 503, 502, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len(receiver.delivered) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("delivered", 4)
    assert WebhookEndpoint.objects.get().consecutive_failures == 0


def test_retries_back_off_exponentially_with_jitter():
    waits = [services.retry_delay(attempt) for attempt in range(1, services.MAX_ATTEMPTS + 1)]

    assert waits[-1] is None
    assert all(later > earlier for earlier, later in itertools.pairwise(waits[:6]))
    assert dt.timedelta(hours=23) < sum(waits[:-1], dt.timedelta()) < dt.timedelta(hours=32)
    assert len({services.retry_delay(3) for _ in range(5)}) > 1  # jittered


def test_a_delivery_failing_for_a_day_is_marked_failed_and_the_endpoint_disabled_with_an_email(
    program, member, receiver, smtp_sink, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver, contact_email="dev@webshop.example")
    receiver.then = 500

    with time_machine.travel(timezone.now(), tick=True) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            buy(endpoint.partner, member)
        for wait in services.RETRY_DELAYS:
            with django_capture_on_commit_callbacks(execute=True):
                run_due_after(wait * 1.2, traveller)
        requests_when_failed = len(receiver.requests)
        with django_capture_on_commit_callbacks(execute=True):
            buy(endpoint.partner, member, external_id="P2")
        run_due_after(dt.timedelta(hours=12), traveller)

    assert requests_when_failed == services.MAX_ATTEMPTS == 8
    assert len(receiver.requests) == 8  # nothing more is sent to a disabled endpoint
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == ("failed", 500)
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None
    assert endpoint.consecutive_failures == 8
    [mail] = smtp_sink.wait_for(1)
    assert mail["To"] == "dev@webshop.example"
    assert endpoint.url in message_text(mail)


def test_an_endpoint_failing_briefly_is_not_disabled(
    program, member, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver)
    receiver.statuses = [500] * 6

    with django_capture_on_commit_callbacks(execute=True):
        for number in range(6):
            buy(endpoint.partner, member, external_id=f"P{number}")

    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 6


# --- resend, test event, rotation ------------------------------------------------------------


def test_resending_a_delivered_message_sends_it_again_with_the_same_id(
    program, member, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        buy(endpoint.partner, member)

    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_resend(delivery=WebhookDelivery.objects.get())

    first, again = receiver.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert len(receiver.delivered) == 2
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_test_event_reaches_the_endpoint_whatever_it_subscribes_to(
    program, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver, event_types=["tier.changed"])

    with django_capture_on_commit_callbacks(execute=True):
        services.test_event_send(endpoint=endpoint)

    [received] = receiver.delivered
    assert receiver.verify(received)["type"] == "webhook.test"


def test_a_disabled_endpoint_gets_no_test_event(program, receiver):
    endpoint = endpoint_for(receiver)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)

    with pytest.raises(services.EndpointInactive):
        services.test_event_send(endpoint=endpoint)

    assert not WebhookEvent.objects.exists()


def test_after_rotation_both_secrets_sign_for_a_day_then_only_the_new_one(
    program, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver)
    old_secret = endpoint.secret
    receiver.secret = None  # check the signatures one by one below

    with time_machine.travel(timezone.now(), tick=True) as traveller:
        endpoint = services.secret_rotate(endpoint=endpoint)
        with django_capture_on_commit_callbacks(execute=True):
            services.test_event_send(endpoint=endpoint)
        [during] = receiver.requests
        assert len(during.signatures) == 2
        assert receiver.verify(during, old_secret) and receiver.verify(during, endpoint.secret)

        traveller.shift(services.PREVIOUS_SECRET_VALIDITY + dt.timedelta(minutes=1))
        with django_capture_on_commit_callbacks(execute=True):
            services.test_event_send(endpoint=endpoint)

        _during, after = receiver.requests
        assert len(after.signatures) == 1
        assert receiver.verify(after, endpoint.secret)
        with pytest.raises(WebhookVerificationError):
            receiver.verify(after, old_secret)
    assert endpoint.secret != old_secret and endpoint.secret.startswith("whsec_")


def test_enabling_a_disabled_endpoint_sends_what_was_waiting(
    program, member, receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    services.event_record(
        event_type="points.earned", data={}, occurred_at=timezone.now(), endpoints=[endpoint]
    )
    assert services.deliver_due() == 0

    services.endpoint_enable(endpoint=endpoint)

    assert services.deliver_due() == 1
    assert len(receiver.delivered) == 1
