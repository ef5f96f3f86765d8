"""Celery tasks of campaigns: thin, idempotent (the claim/record protocol, docs/campaigns.md)."""

from __future__ import annotations

import datetime as dt
import uuid

from celery import shared_task
from django.utils import timezone


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def send_campaign(self, campaign_id: int) -> str:
    """Send what is claimable of the campaign. The task id is the claim owner: a redelivery
    after the worker died takes over its own claims at once."""
    from loyalty.outbox.services import outbox_enqueue

    from .models import Campaign
    from .sending import TIME_SLICE_SECONDS, automation_wake_at, campaign_send, next_run_in
    from .services import SEND_TASK

    owner = self.request.id or uuid.uuid4().hex
    Campaign.objects.filter(pk=campaign_id).update(
        dispatch_until=timezone.now() + dt.timedelta(seconds=TIME_SLICE_SECONDS + 120)
    )
    outcome = campaign_send(campaign_id=campaign_id, owner=owner)
    if outcome == "continue":
        outbox_enqueue(SEND_TASK, campaign_id)
    elif outcome == "later":
        delay = next_run_in(campaign_id)
        Campaign.objects.filter(pk=campaign_id).update(
            dispatch_until=timezone.now() + dt.timedelta(seconds=delay + 120)
        )
        send_campaign.apply_async((campaign_id,), countdown=delay)
    elif outcome == "idle":
        Campaign.objects.filter(pk=campaign_id).update(
            dispatch_until=automation_wake_at(campaign_id)
        )
    return outcome


@shared_task(acks_late=True)
def tick() -> dict:
    """Every minute (celery beat): start scheduled campaigns that are due, replace lost tasks."""
    from .services import campaigns_kick, campaigns_start_due

    return {"started": campaigns_start_due(), "kicked": campaigns_kick()}


@shared_task(acks_late=True)
def automations_birthdays() -> dict:
    """Daily (celery beat): birthday messages and points for today's birthdays (idempotent)."""
    from .automations import birthdays_run

    return birthdays_run()


@shared_task(acks_late=True)
def automations_expiring_points() -> dict:
    """Daily (celery beat): points-expiring messages N days before the points expire."""
    from .automations import expiring_points_run

    return expiring_points_run()


@shared_task(acks_late=True)
def results_refresh() -> int:
    """Every 10 minutes (celery beat): recompute the results of campaigns whose attribution
    window is open, so their pages read them from the cache."""
    from .selectors import campaign_results_store, campaigns_with_open_results

    campaigns = list(campaigns_with_open_results(timezone.now()))
    for campaign in campaigns:
        campaign_results_store(campaign=campaign)
    return len(campaigns) + results_warm()


@shared_task(acks_late=True)
def results_warm() -> int:
    """Compute the results the comparison page lacks (a closed window's kept for a week ran
    out, or the page had no time left to compute them); returns how many."""
    from .selectors import campaign_results_cached, campaign_results_store, compared_campaigns

    missing = [
        c for c in compared_campaigns() if not campaign_results_cached(campaign=c, compute=False)
    ]
    for campaign in missing:
        campaign_results_store(campaign=campaign)
    return len(missing)
