"""The claim/record protocol over a real SMTP server: retries, permanent failures, pause and
resume, a crashed worker's claims (docs/campaigns.md)."""

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import CampaignSettings, CampaignStatus, Recipient, RecipientStatus
from campaigns.sending import campaign_send, recipients_claim

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def retry_at_once(db):
    CampaignSettings.objects.update_or_create(pk=1, defaults={"retry_backoff_seconds": 0})


def _ids(sink) -> Counter:
    return Counter(str(message["Message-ID"]) for message in sink.received)


def test_transient_errors_are_retried_and_permanent_ones_recorded(
    scored, campaign_of, committed, flaky_sink
):
    members = scored(30)
    flaky_sink.transient_share = 0.2
    flaky_sink.permanent = {members[0].email}
    campaign = campaign_of(holdout_percent=0)

    committed(services.campaign_send_now, campaign=campaign, by=None)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert flaky_sink.refused >= 5
    assert len(flaky_sink.received) == 29
    assert max(_ids(flaky_sink).values()) == 1
    failed = Recipient.objects.get(campaign=campaign, status=RecipientStatus.FAILED)
    assert failed.member == members[0]
    assert "550" in failed.last_error
    assert Recipient.objects.filter(status=RecipientStatus.SENT).count() == 29
    retried = Recipient.objects.filter(attempts=2, status=RecipientStatus.SENT)
    assert retried.count() == flaky_sink.refused


def test_every_message_carries_one_click_unsubscribe_and_its_recorded_message_id(
    scored, campaign_of, committed, flaky_sink
):
    scored(1, language="en", first_name="Noor")
    campaign = campaign_of(holdout_percent=0)

    committed(services.campaign_send_now, campaign=campaign, by=None)

    (received,) = flaky_sink.received
    recipient = Recipient.objects.get(campaign=campaign)
    assert received["Message-ID"] == recipient.message_id
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/portal/email/unsubscribe/" in str(received["List-Unsubscribe"])
    assert received["Subject"] == "Hello Noor"


def test_pause_and_resume_never_resend(scored, campaign_of, committed, flaky_sink):
    scored(50)
    CampaignSettings.objects.update_or_create(pk=1, defaults={"batch_size": 10})
    campaign = campaign_of(holdout_percent=0)
    services.campaign_schedule(
        campaign=campaign, at=timezone.now() + dt.timedelta(hours=1), by=None
    )
    # Start without handing the task over, then send one batch and pause.
    from campaigns.services import audience_freeze

    audience_freeze(campaign=campaign)
    campaign.status = CampaignStatus.SENDING
    campaign.save()
    batch = recipients_claim(campaign_id=campaign.pk, owner="worker-1", size=10)
    from campaigns.ratelimit import NoLimit
    from campaigns.sending import batch_send

    batch_send(campaign=campaign, recipients=batch[:10], owner="worker-1", rate=NoLimit())
    services.campaign_pause(campaign=campaign, by=None)
    assert campaign_send(campaign_id=campaign.pk, owner="worker-2") == "stopped"
    assert len(flaky_sink.received) == 10

    committed(services.campaign_resume, campaign=campaign, by=None)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert len(flaky_sink.received) == 50
    assert max(_ids(flaky_sink).values()) == 1


def test_pausing_mid_batch_hands_the_unsent_claims_back(scored, campaign_of, flaky_sink):
    scored(45)
    campaign = campaign_of(holdout_percent=0)
    from campaigns.services import audience_freeze

    audience_freeze(campaign=campaign)
    campaign.status = CampaignStatus.SENDING
    campaign.save()
    batch = recipients_claim(campaign_id=campaign.pk, owner="worker-1", size=45)
    services.campaign_pause(campaign=campaign, by=None)  # the worker notices every 20 messages
    from campaigns.ratelimit import NoLimit
    from campaigns.sending import batch_send

    result = batch_send(campaign=campaign, recipients=batch, owner="worker-1", rate=NoLimit())

    assert result.stopped and result.sent == 20
    assert Recipient.objects.filter(status=RecipientStatus.PENDING, claimed_by="").count() == 25


def test_a_dead_workers_claims_are_taken_over_and_nobody_is_lost(scored, campaign_of, flaky_sink):
    scored(30)
    campaign = campaign_of(holdout_percent=0)
    from campaigns.services import audience_freeze

    audience_freeze(campaign=campaign)
    campaign.status = CampaignStatus.SENDING
    campaign.save()
    # A worker claimed 20, had one row handed to SMTP when it died, and its lease ran out.
    dead = recipients_claim(campaign_id=campaign.pk, owner="dead", size=20)
    Recipient.objects.filter(pk=dead[0].pk).update(status=RecipientStatus.SENDING)
    # While the lease runs, nobody else may take them.
    assert len(recipients_claim(campaign_id=campaign.pk, owner="other", size=30)) == 10
    Recipient.objects.filter(claimed_by="other").update(
        status=RecipientStatus.PENDING, claimed_by=""
    )
    Recipient.objects.filter(claimed_by="dead").update(
        claim_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )

    assert campaign_send(campaign_id=campaign.pk, owner="new") == "done"

    assert len(flaky_sink.received) == 30
    assert Recipient.objects.filter(status=RecipientStatus.SENT).count() == 30


def test_a_redelivered_task_takes_over_its_own_claims_at_once(scored, campaign_of, flaky_sink):
    scored(12)
    campaign = campaign_of(holdout_percent=0)
    from campaigns.services import audience_freeze

    audience_freeze(campaign=campaign)
    campaign.status = CampaignStatus.SENDING
    campaign.save()
    recipients_claim(campaign_id=campaign.pk, owner="task-1", size=12)  # then killed

    assert campaign_send(campaign_id=campaign.pk, owner="task-1") == "done"
    assert len(flaky_sink.received) == 12
