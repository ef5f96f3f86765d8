"""The claim/record protocol over a real SMTP server: retries, permanent failures, pause and
resume, a crashed worker's claims (docs/campaigns.md)."""

import datetime as dt
import re
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


def _recipient_updates(queries, status: str) -> list[str]:
    """The captured UPDATEs of recipients that set `status`."""
    return [
        query["sql"]
        for query in queries
        if query["sql"].lstrip().upper().startswith(("UPDATE", "SET LOCAL"))
        and "campaigns_recipient" in query["sql"]
        and re.search(rf"""SET "?status"? = '{status}'""", query["sql"])
    ]


@pytest.mark.parametrize("limited", [False, True], ids=["no rate", "a send rate"])
def test_a_group_moves_to_sending_in_one_commit_and_each_is_marked_sent_after_its_answer(
    scored, campaign_of, flaky_sink, limited
):
    """The pipeline's fixed cost per message: one `sending` commit per group of 20 (without a
    send rate; with one each row waits for its slot before it moves), one `sent` mark per
    message; every row of the batch ends `sent` with its attempt counted once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns.ratelimit import LocalRate, NoLimit
    from campaigns.sending import SENDING_GROUP, batch_send
    from campaigns.services import audience_freeze

    scored(25)
    campaign = campaign_of(holdout_percent=0)
    audience_freeze(campaign=campaign)
    campaign.status = CampaignStatus.SENDING
    campaign.save()
    batch = recipients_claim(campaign_id=campaign.pk, owner="worker-1", size=25)
    rate = LocalRate(per_second=10_000, per_hour=0) if limited else NoLimit()

    with CaptureQueriesContext(connection) as queries:
        result = batch_send(campaign=campaign, recipients=batch, owner="worker-1", rate=rate)

    assert result.sent == 25 and len(flaky_sink.received) == 25
    marks = _recipient_updates(queries.captured_queries, "sending")
    assert len(marks) == (25 if limited else -(-25 // SENDING_GROUP))
    assert len(_recipient_updates(queries.captured_queries, "sent")) == 25
    rows = Recipient.objects.filter(campaign=campaign)
    assert set(rows.values_list("status", "attempts", "claimed_by")) == {
        (RecipientStatus.SENT, 1, "")
    }
    assert _ids(flaky_sink) == Counter(rows.values_list("message_id", flat=True))


@pytest.mark.postgres
def test_only_the_sent_mark_skips_waiting_for_the_disk(
    transactional_db, scored, campaign_of, flaky_sink
):
    """`synchronous_commit` off for the `sent` mark's own transaction (outside any other
    transaction, as in a worker), never for the `sending` mark, and not left on the session."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns.ratelimit import NoLimit
    from campaigns.sending import batch_send
    from campaigns.services import audience_freeze

    scored(3)
    campaign = campaign_of(holdout_percent=0)
    audience_freeze(campaign=campaign)
    campaign.status = CampaignStatus.SENDING
    campaign.save()
    batch = recipients_claim(campaign_id=campaign.pk, owner="worker-1", size=3)

    with CaptureQueriesContext(connection) as queries:
        batch_send(campaign=campaign, recipients=batch, owner="worker-1", rate=NoLimit())

    sent = _recipient_updates(queries.captured_queries, "sent")
    assert len(sent) == 3
    assert all(sql.startswith("SET LOCAL synchronous_commit TO OFF;") for sql in sent)
    (marking,) = _recipient_updates(queries.captured_queries, "sending")
    assert "synchronous_commit" not in marking
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    assert set(Recipient.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        RecipientStatus.SENT
    }
