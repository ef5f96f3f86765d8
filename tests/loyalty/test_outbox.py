"""The transactional outbox: side effects recorded with their change, handed to the broker after
the commit, and picked up by the sweep when the broker refused them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from loyalty.celery import app
from loyalty.outbox import services as outbox
from loyalty.outbox.models import OutboxMessage
from members.models import Member, MemberStatus
from members.services import member_enrol
from rewards import codes
from rewards import services as rewards
from rewards.models import Redemption
from tests.concurrency import race
from tests.conftest import broker_unreachable, message_text, wait_until
from tests.factories import MemberFactory, RewardFactory, TermsVersionFactory
from tests.members.test_views import ENROL

# A task that is harmless wherever it lands: the sweep itself.
HARMLESS = "loyalty.outbox.tasks.sweep"


@pytest.fixture
def broker_not_eager():
    """Tasks go through the broker (as in production), to a queue nobody reads."""
    queue = f"outbox-test-{uuid.uuid4().hex[:8]}"
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager, app.conf.task_default_queue = False, queue
    try:
        yield queue
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
        if app.conf.broker_url.startswith("redis"):
            import redis

            redis.Redis.from_url(app.conf.broker_url).delete(queue)


@pytest.mark.django_db
def test_a_side_effect_is_recorded_with_its_change_and_handed_over_after_commit(
    program, mailoutbox, django_capture_on_commit_callbacks
):
    TermsVersionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        member = member_enrol(
            email="ada@example.com",
            birth_date=dt.date(1990, 1, 1),
            password="a-long-secret-phrase",
            accepted_terms=True,
        )

    message = OutboxMessage.objects.get()
    assert (message.task, message.args) == ("members.tasks.send_confirmation_email", [member.pk])
    assert message.dispatched_at is not None and message.attempts == 1
    assert [mail.to for mail in mailoutbox] == [["ada@example.com"]]


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_side_effect(
    program, mailoutbox, django_capture_on_commit_callbacks
):
    member = MemberFactory()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        outbox.outbox_enqueue("members.tasks.send_confirmation_email", member.pk)
        raise RuntimeError("the change failed")

    assert not OutboxMessage.objects.exists() and callbacks == [] and mailoutbox == []


@pytest.mark.django_db(transaction=True)
def test_a_refused_hand_off_is_kept_and_the_sweep_hands_it_over_once_the_broker_is_back(
    broker_not_eager,
):
    with broker_unreachable():
        message = outbox.outbox_enqueue(HARMLESS)
        outbox._hand_off_thread.wait_idle(timeout=60)
        refused = OutboxMessage.objects.get(pk=message.pk)
        assert refused.dispatched_at is None and refused.claimed_at is None
        assert "OperationalError" in refused.last_error
        # The sweep while the broker is still away hands nothing over and loses nothing.
        assert outbox.outbox_sweep(now=timezone.now() + outbox.SWEEP_GRACE) == 0

    assert outbox.outbox_sweep(now=timezone.now()) == 0  # too fresh: left to its own request
    assert outbox.outbox_sweep(now=timezone.now() + outbox.SWEEP_GRACE) == 1

    handed = OutboxMessage.objects.get(pk=message.pk)
    assert handed.dispatched_at is not None and handed.last_error == ""
    assert handed.attempts >= 2
    assert outbox.outbox_sweep(now=timezone.now() + outbox.SWEEP_GRACE) == 0  # never twice


@pytest.mark.django_db(transaction=True)
def test_the_sweep_prunes_messages_handed_over_long_ago(broker_not_eager):
    old = OutboxMessage.objects.create(
        task=HARMLESS, dispatched_at=timezone.now() - outbox.KEEP_DISPATCHED - dt.timedelta(1)
    )
    recent = OutboxMessage.objects.create(task=HARMLESS, dispatched_at=timezone.now())

    outbox.outbox_sweep()

    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_processes_handing_over_one_message_at_once_send_it_once(broker_not_eager, race_round):
    message = OutboxMessage.objects.create(task=HARMLESS)

    outcomes = race(
        10, lambda _i: "sent" if outbox.outbox_dispatch(message_id=message.pk) else "no"
    )

    assert outcomes == Counter({"sent": 1, "no": 9})
    assert OutboxMessage.objects.get(pk=message.pk).attempts == 1


# --- the whole path with a real worker: the broker down during the request, then back ------


def _sweep_once_idle() -> int:
    assert outbox._hand_off_thread.wait_idle(timeout=60)
    return outbox.outbox_sweep(now=timezone.now() + outbox.SWEEP_GRACE)


@pytest.mark.celery_worker
def test_a_redemption_with_the_broker_down_succeeds_and_its_email_arrives_when_it_is_back(
    member_client, celery_worker, smtp_sink
):
    reward = RewardFactory(points_cost=200, name_en="Cinema ticket")
    rewards.codes_generate(reward=reward, count=2)

    with broker_unreachable():
        response = member_client.post(reverse("rewards:redeem", args=[reward.pk]))
        redemption = Redemption.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("rewards:redemption", args=[redemption.pk])
        assert _sweep_once_idle() == 0
        assert smtp_sink.messages == []

    assert _sweep_once_idle() == 1
    [mail] = smtp_sink.wait_for(1)
    assert mail["To"] == "noor@example.com"
    assert codes.display(redemption.code) in message_text(mail)
    assert not OutboxMessage.objects.filter(dispatched_at__isnull=True).exists()
    # The member did not need to retry: one redemption, one debit.
    assert member_client.get(response["Location"]).status_code == 200
    assert Redemption.objects.count() == 1


@pytest.mark.celery_worker
def test_an_enrolment_with_the_broker_down_succeeds_and_the_link_arrives_when_it_is_back(
    client, program, celery_worker, smtp_sink
):
    TermsVersionFactory()

    with broker_unreachable():
        response = client.post(reverse("members:enrol"), ENROL)
        assert response.status_code == 302
        assert response["Location"] == reverse("members:enrol_sent")
        assert Member.objects.get(email="sanne@example.com").status == MemberStatus.PENDING
        assert _sweep_once_idle() == 0

    assert _sweep_once_idle() == 1
    [mail] = smtp_sink.wait_for(1)
    assert mail["To"] == "sanne@example.com" and "/portal/confirm/" in message_text(mail)
    wait_until(lambda: OutboxMessage.objects.filter(dispatched_at__isnull=False).exists())
