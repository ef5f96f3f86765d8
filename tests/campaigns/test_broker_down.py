"""Redis (the broker, the cache and the shared send rate) goes down in the middle of a campaign
and comes back empty; and "Send now" is pressed while it is down. Each campaign completes
exactly once (PostgreSQL mode, a real worker; a redis-server of the test's own, never the
shared one)."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from contextlib import contextmanager

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, CampaignSettings, CampaignStatus, Recipient, RecipientStatus
from loyalty.outbox.models import OutboxMessage
from loyalty.outbox.services import outbox_sweep
from tests.campaigns.workers import Worker, seed_champions, sent_count
from tests.conftest import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.celery_worker]


@contextmanager
def broker_at(url: str, queue: str):
    """This process's Celery app (the outbox hand-off, pings) on `url` and the worker's queue."""
    from loyalty.celery import app

    def point_at(broker: str) -> None:
        app.conf.broker_url = broker
        app._pool = None
        app.amqp._producer_pool = None

    previous = (app.conf.broker_url, app.conf.task_always_eager, app.conf.task_default_queue)
    point_at(url)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    try:
        yield
    finally:
        point_at(previous[0])
        app.conf.task_always_eager, app.conf.task_default_queue = previous[1:]


def _beat(until) -> None:
    """What celery beat does every minute, sped up: the outbox sweep hands over what the broker
    refused, the tick gives a sending campaign whose task was lost a new one."""
    deadline = time.monotonic() + 240
    while not until():
        assert time.monotonic() < deadline, "the campaign did not complete"
        later = timezone.now() + dt.timedelta(minutes=1)
        outbox_sweep(now=later)
        services.campaigns_kick()
        time.sleep(2)


def _exactly_once(campaign: Campaign, sink) -> None:
    mailed = Recipient.objects.filter(campaign=campaign).exclude(status=RecipientStatus.HOLDOUT)
    assert set(mailed.values_list("status", flat=True)) == {RecipientStatus.SENT}
    at_sink = Counter(str(message["Message-ID"]) for message in sink.received)
    assert set(at_sink) == set(mailed.values_list("message_id", flat=True))
    assert max(at_sink.values()) == 1  # no worker died: not even the SMTP window repeats


@pytest.mark.timeout(600)
def test_redis_down_in_the_middle_of_a_campaign_and_back_empty(
    transactional_db, flaky_sink, message, program, private_redis
):
    seed_champions(1500)
    # A shared send rate, so the worker also needs Redis for every message.
    CampaignSettings.objects.update_or_create(
        pk=1, defaults={"batch_size": 100, "retry_backoff_seconds": 1, "messages_per_second": 500}
    )
    campaign = Campaign.objects.create(
        name="Broker test", message=message, segments=["champions"], holdout_percent=10
    )
    worker = Worker.new(flaky_sink.port, redis_url=private_redis.url)
    with broker_at(private_redis.url, worker.queue):
        try:
            worker.start()
            services.campaign_send_now(campaign=campaign, by=None)
            wait_until(lambda: sent_count(campaign) >= 300, timeout=180, interval=0.02)

            private_redis.kill()
            at_outage = len(flaky_sink.received)
            time.sleep(3)
            # No slot from the shared rate, nothing sent (one message may have had its slot).
            assert len(flaky_sink.received) <= at_outage + 1
            assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENDING

            private_redis.start()  # empty: the queued and unacknowledged tasks are gone
            _beat(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT)
        finally:
            worker.stop()
    _exactly_once(campaign, flaky_sink)


@pytest.mark.timeout(600)
def test_send_now_while_redis_is_down_answers_and_the_campaign_starts_when_it_is_back(
    transactional_db, flaky_sink, message, program, private_redis, client, staff_in
):
    seed_champions(200)
    CampaignSettings.objects.update_or_create(pk=1, defaults={"retry_backoff_seconds": 1})
    campaign = Campaign.objects.create(
        name="Broker test", message=message, segments=["champions"], holdout_percent=0
    )
    client.force_login(staff_in("Program manager"))
    worker = Worker.new(flaky_sink.port, redis_url=private_redis.url)
    with broker_at(private_redis.url, worker.queue):
        try:
            worker.start()
            private_redis.kill()

            response = client.post(
                reverse("admin:campaigns_campaign_action", args=[campaign.pk, "send_now"])
            )

            assert response.status_code == 302  # not a 500: the hand-off waits in the outbox
            assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENDING
            assert Recipient.objects.filter(campaign=campaign).count() == 200
            assert OutboxMessage.objects.filter(dispatched_at__isnull=True).exists()
            assert flaky_sink.received == []

            private_redis.start()
            _beat(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT)
        finally:
            worker.stop()
    assert not OutboxMessage.objects.filter(dispatched_at__isnull=True).exists()
    _exactly_once(campaign, flaky_sink)
