"""The `failed` state (a server that will not take our mail, a message that cannot be rendered)
and the send rate shared by every worker (docs/campaigns.md)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.conf import settings as django_settings

from campaigns import ratelimit, sending, services
from campaigns.models import (
    Campaign,
    CampaignSettings,
    CampaignStatus,
    CampaignTransition,
    Recipient,
    RecipientStatus,
)


@pytest.fixture(autouse=True)
def retry_at_once(db):
    CampaignSettings.objects.update_or_create(pk=1, defaults={"retry_backoff_seconds": 0})


def _statuses(campaign) -> set[str]:
    return set(Recipient.objects.filter(campaign=campaign).values_list("status", flat=True))


@pytest.mark.django_db
def test_a_server_refusing_our_sender_fails_the_campaign_and_resume_sends_everyone_once(
    scored, campaign_of, committed, flaky_sink, monkeypatch
):
    monkeypatch.setattr(sending, "SERVER_FAILURES_BEFORE_FAILED", 3)
    scored(12)
    campaign = campaign_of(holdout_percent=0)
    flaky_sink.refuse_sender = "550 5.7.1 Sender address rejected"

    committed(services.campaign_send_now, campaign=campaign, by=None)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    assert campaign.failed_batches == 3
    change = CampaignTransition.objects.filter(campaign=campaign).last()
    assert (change.from_status, change.to_status, change.by) == ("sending", "failed", None)
    assert "550" in change.note and "Sender address rejected" in change.note
    # Nobody was charged for the server's refusal: all still waiting, no attempt counted.
    assert _statuses(campaign) == {RecipientStatus.PENDING}
    assert not Recipient.objects.filter(campaign=campaign, attempts__gt=0).exists()
    assert flaky_sink.received == []

    flaky_sink.refuse_sender = ""
    committed(services.campaign_resume, campaign=campaign, by=None)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert campaign.failed_batches == 0
    ids = [str(message["Message-ID"]) for message in flaky_sink.received]
    assert len(ids) == len(set(ids)) == 12
    assert _statuses(campaign) == {RecipientStatus.SENT}


@pytest.mark.django_db
def test_a_refused_connection_fails_the_campaign_after_n_batches_in_a_row(
    scored, campaign_of, committed, settings, monkeypatch
):
    import socket

    monkeypatch.setattr(sending, "SERVER_FAILURES_BEFORE_FAILED", 2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port
    scored(3)
    campaign = campaign_of(holdout_percent=0)

    committed(services.campaign_send_now, campaign=campaign, by=None)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    note = CampaignTransition.objects.filter(campaign=campaign).last().note
    assert "ConnectionRefusedError" in note
    assert _statuses(campaign) == {RecipientStatus.PENDING}


@pytest.mark.django_db
def test_a_message_that_cannot_be_rendered_fails_the_campaign_at_once(
    scored, campaign_of, committed, flaky_sink, message
):
    scored(3, language="nl")
    message.html_nl = message.html_en = "{% for reward in %}broken{% endfor %}"
    message.save()
    campaign = campaign_of(holdout_percent=0)

    committed(services.campaign_send_now, campaign=campaign, by=None)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    note = CampaignTransition.objects.filter(campaign=campaign).last().note
    assert note.startswith("The message cannot be rendered")
    assert flaky_sink.received == []
    assert _statuses(campaign) == {RecipientStatus.PENDING}


@pytest.mark.django_db
def test_the_admin_offers_resume_and_cancel_for_a_failed_campaign(
    scored, campaign_of, staff_in, client, flaky_sink
):
    scored(2)
    campaign = campaign_of(holdout_percent=0)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.FAILED)
    user = staff_in("Program manager")
    client.force_login(user)

    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/do/resume/" in html and "/do/cancel/" in html and "/do/pause/" not in html


# --- the shared send rate -----------------------------------------------------------------


def _stamps(rate, seconds: float, out: list[float]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert rate.acquire() == 0.0
        out.append(time.monotonic())


def _most_in_one_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, moment in enumerate(stamps):
        while moment - stamps[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def _two_senders(make_rate, seconds: float = 2.5) -> tuple[list[float], list[float]]:
    first: list[float] = []
    second: list[float] = []
    threads = [
        threading.Thread(target=_stamps, args=(make_rate(), seconds, out))
        for out in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return first, second


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs Redis (set REDIS_URL)")
def test_two_workers_together_keep_the_per_second_rate_through_redis():
    key = f"test:send-rate:{uuid.uuid4().hex}"
    first, second = _two_senders(
        lambda: ratelimit.RedisRate(20, 0, url=django_settings.REDIS_URL, key=key)
    )
    both = first + second
    assert first and second  # both workers sent
    assert _most_in_one_second(both) <= 21  # 20/s, one more for a wake-up at the edge
    assert len(both) >= 20 * 2.5 * 0.8  # and it does not hold back far more than asked

    # The same two senders, each pacing itself alone, send twice the rate (what the shared
    # limit prevents).
    alone = _two_senders(lambda: ratelimit.LocalRate(20, 0))
    assert _most_in_one_second(alone[0] + alone[1]) >= 35


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs Redis (set REDIS_URL)")
def test_the_hourly_budget_is_shared_and_the_rest_waits_for_the_next_hour():
    if 3600 - time.time() % 3600 < 40:
        time.sleep(3600 - time.time() % 3600 + 1)  # not across the hour's end
    key = f"test:send-rate:{uuid.uuid4().hex}"
    one = ratelimit.RedisRate(0, 5, url=django_settings.REDIS_URL, key=key)
    other = ratelimit.RedisRate(0, 5, url=django_settings.REDIS_URL, key=key)
    assert [one.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert [other.acquire() for _ in range(2)] == [0.0, 0.0]
    wait = other.acquire()
    assert ratelimit.LONG_WAIT < wait <= 3600
    assert one.acquire() == pytest.approx(wait, abs=2)


def test_without_redis_the_rate_holds_in_process():
    rate = ratelimit.LocalRate(50, 0)
    stamps: list[float] = []
    _stamps(rate, 1.5, stamps)
    assert _most_in_one_second(stamps) <= 51
    hourly = ratelimit.LocalRate(0, 3)
    assert [hourly.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert hourly.acquire() > ratelimit.LONG_WAIT or time.time() % 3600 > 3600 - 31


def test_with_redis_unreachable_the_sender_waits_and_goes_on_when_it_is_back(private_redis):
    rate = ratelimit.RedisRate(10, 0, url=private_redis.url, key="test:send-rate")
    assert rate.acquire() == 0.0
    private_redis.kill()
    done = threading.Event()

    def send_one():
        rate.acquire()
        done.set()

    thread = threading.Thread(target=send_one, daemon=True)
    thread.start()
    assert not done.wait(3.0)  # no crash, and no message without a slot
    private_redis.start()
    assert done.wait(15.0)
    thread.join(1)


@pytest.mark.django_db
def test_a_campaign_keeps_the_rate_end_to_end(scored, campaign_of, committed, flaky_sink):
    CampaignSettings.objects.filter(pk=1).update(messages_per_second=10)
    scored(15)
    campaign = campaign_of(holdout_percent=0)
    started = time.monotonic()

    committed(services.campaign_send_now, campaign=campaign, by=None)

    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SENT
    assert len(flaky_sink.received) == 15
    assert time.monotonic() - started >= 1.3  # 15 messages at 10/s take at least 1.4 s
