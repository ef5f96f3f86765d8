"""Automations: lifecycle messages sent when something happens to a member (docs/campaigns.md,
"Automations").

Each automation owns a campaign of kind `automation`. An occurrence of its trigger for a member
(a confirmed address, a tier change, a segmentation run, a birthday's year, an expiry day) is
one recipient row of that campaign, written by one INSERT ... SELECT ... ON CONFLICT DO NOTHING
against the unique (campaign, member, occurrence) key: an event told twice or a daily scan run
twice writes nothing more. From there the campaigns' pipeline sends it (claim/record protocol,
consent, suppression and status checked again per batch). The holdout is drawn per occurrence
from the campaign's seed, the member and the occurrence, so a retry draws the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from loyalty import events
from loyalty.models import LedgerEntry, TierChange
from loyalty.outbox.services import outbox_enqueue
from loyalty.selectors import local_day_bounds
from loyalty.services import birthday_points_credit_all
from members.models import Member, MemberStatus, User
from members.selectors import members_with_birthday
from segmentation.models import MemberScore
from segmentation.selectors import members_in_segments

from .models import (
    Automation,
    AutomationTrigger,
    Campaign,
    CampaignKind,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    SkipReason,
)
from .personalisation import expiry_occurrence
from .rendering import message_language
from .selectors import active_automations, capped_member_ids, mailable
from .services import SEND_TASK, _locked, _transition, recipients_insert

WELCOME_OCCURRENCE = "welcome"
_UPDATE_CHUNK = 5000


def holdout_drawn(*, seed: int, member_id: int, occurrence: str, percent: int) -> bool:
    """Whether this occurrence for this member is held out: a uniform draw from a hash of the
    seed, the member and the occurrence (the same answer on every retry)."""
    digest = hashlib.blake2b(f"{seed}:{member_id}:{occurrence}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * 100 < percent * 2**64


# --- configuration -------------------------------------------------------------------------


@transaction.atomic
def automation_save(
    *, automation: Automation, by: User | None, bonus: dict | None = None
) -> Automation:
    """Create an automation (off, with its campaign and holdout seed) or save its changes; the
    campaign follows its name, message and holdout share, and holds the bonus offer (`bonus`:
    the campaign's `bonus_*` fields; None keeps it)."""
    if automation.pk is None:
        automation.campaign = Campaign.objects.create(
            name=automation.name,
            kind=CampaignKind.AUTOMATION,
            message=automation.message,
            holdout_percent=automation.holdout_percent,
            holdout_seed=secrets.randbits(62),
            created_by=by,
            **(bonus or {}),
        )
        automation.active = False
        automation.save()
        return automation
    automation.save()
    campaign = Campaign.objects.select_for_update().get(pk=automation.campaign_id)
    campaign.name = automation.name
    campaign.message = automation.message
    campaign.holdout_percent = automation.holdout_percent
    for name, value in (bonus or {}).items():
        setattr(campaign, name, value)
    # save(), not update(): its post_save tells the purchase path about a changed bonus offer.
    campaign.save(update_fields=["name", "message", "holdout_percent", *(bonus or {})])
    return automation


@transaction.atomic
def automation_set_active(*, automation: Automation, active: bool, by: User | None) -> Automation:
    """Turn an automation on (its campaign sending) or off (paused: what waits is kept and
    sent when it is turned on again), recorded as a campaign state change with the user."""
    automation = Automation.objects.select_for_update().get(pk=automation.pk)
    if automation.active == active:
        return automation
    campaign = _locked(automation.campaign)
    if active:
        message_language(message=campaign.message, preferred="")  # MessageIncomplete if empty
        _transition(campaign, CampaignStatus.SENDING, by=by, note="automation on")
        campaign.started_at = campaign.started_at or timezone.now()
        campaign.save(update_fields=["status", "started_at"])
        outbox_enqueue(SEND_TASK, campaign.pk)
    else:
        _transition(campaign, CampaignStatus.PAUSED, by=by, note="automation off")
        campaign.save(update_fields=["status"])
    automation.active = active
    automation.save(update_fields=["active"])
    return automation


# --- recording occurrences -----------------------------------------------------------------


def occurrences_record(
    *,
    automation: Automation,
    members: QuerySet[Member],
    occurrence: str,
    now: dt.datetime | None = None,
) -> int:
    """One recipient per member of `members` (active, consenting, not suppressed) for this
    occurrence, unless they have one already; the holdout drawn and the frequency cap applied
    to the new rows. Due after the automation's delay. Returns the number of new rows."""
    campaign = automation.campaign
    due = (now or timezone.now()) + automation.delay if automation.delay_hours else None
    with transaction.atomic():
        rows = recipients_insert(
            campaign=campaign,
            members=mailable(members.filter(status=MemberStatus.ACTIVE)),
            occurrence=occurrence,
            next_attempt_at=due,
            returning=True,
        )
        assert isinstance(rows, list)
        if not rows:
            return 0
        _settle(campaign, rows)
        if due is None:
            outbox_enqueue(SEND_TASK, campaign.pk)
    return len(rows)


def _settle(campaign: Campaign, rows: list[tuple[int, int, str]]) -> None:
    """The new rows' holdout (per occurrence, deterministic) and frequency cap, as campaigns."""
    seed = campaign.holdout_seed or 0
    held = [
        pk
        for pk, member_id, occurrence in rows
        if holdout_drawn(
            seed=seed, member_id=member_id, occurrence=occurrence, percent=campaign.holdout_percent
        )
    ]
    for start in range(0, len(held), _UPDATE_CHUNK):
        Recipient.objects.filter(
            pk__in=held[start : start + _UPDATE_CHUNK], status=RecipientStatus.PENDING
        ).update(status=RecipientStatus.HOLDOUT)
    waiting = Recipient.objects.filter(
        campaign=campaign,
        status=RecipientStatus.PENDING,
        occurrence__in={occurrence for _pk, _member, occurrence in rows},
    )
    waiting.filter(member_id__in=capped_member_ids(among=waiting.values("member_id"))).update(
        status=RecipientStatus.SKIPPED, skip_reason=SkipReason.FREQUENCY_CAP
    )


# --- triggers ------------------------------------------------------------------------------


def on_member_confirmed(event: events.DomainEvent) -> None:
    """Welcome: once per member, after the e-mail address is confirmed."""
    for automation in active_automations(trigger=AutomationTrigger.WELCOME):
        occurrences_record(
            automation=automation,
            members=Member.objects.filter(pk=event.member_id),
            occurrence=WELCOME_OCCURRENCE,
        )


def on_tier_changed(event: events.DomainEvent) -> None:
    """Tier reached / tier lowered: once per tier change (not the base tier at enrolment)."""
    change_id = event.data.get("tier_change_id")
    if change_id is None or event.data.get("reason") == "enrolment":
        return
    automations = list(
        active_automations(trigger=AutomationTrigger.TIER_REACHED)
        | active_automations(trigger=AutomationTrigger.TIER_LOWERED)
    )
    if not automations:
        return
    change = (
        TierChange.objects.filter(pk=change_id)
        .values("from_tier__rank", "to_tier__rank", "to_tier_id")
        .first()
    )
    if change is None:
        return
    before = change["from_tier__rank"] if change["from_tier__rank"] is not None else -1
    after = change["to_tier__rank"] if change["to_tier__rank"] is not None else -1
    if after == before:
        return
    trigger = AutomationTrigger.TIER_REACHED if after > before else AutomationTrigger.TIER_LOWERED
    for automation in automations:
        if automation.trigger != trigger:
            continue
        if automation.tier_id is not None and automation.tier_id != change["to_tier_id"]:
            continue
        occurrences_record(
            automation=automation,
            members=Member.objects.filter(pk=event.member_id),
            occurrence=f"tier-change:{change_id}",
        )


def on_segments_recalculated(event: events.DomainEvent) -> None:
    """Segment entry: after a run became current, the members now in the automation's segment
    who were not in it in the run it replaced (one INSERT ... SELECT per automation). The first
    run ever has nothing to compare with and triggers nothing."""
    run_id, previous_id = event.data.get("run_id"), event.data.get("previous_run_id")
    if previous_id is None:
        return
    for automation in active_automations(trigger=AutomationTrigger.SEGMENT_ENTRY):
        was_in = MemberScore.objects.filter(run_id=previous_id, segment=automation.segment)
        occurrences_record(
            automation=automation,
            members=members_in_segments(segments=[automation.segment]).exclude(
                pk__in=was_in.values("member_id")
            ),
            occurrence=f"run:{run_id}",
        )


def birthdays_run(*, today: dt.date | None = None) -> dict:
    """The daily birthday scan (program's time zone): the optional points first (once per
    member and year, whatever the consent or holdout: a program benefit), then the messages
    (once per member and year). Running it twice changes nothing more."""
    today = today or timezone.localdate()
    outcome = {"messages": 0, "points": 0}
    for automation in active_automations(trigger=AutomationTrigger.BIRTHDAY):
        if automation.birthday_points:
            outcome["points"] += birthday_points_credit_all(
                on=today, points=automation.birthday_points
            )
        outcome["messages"] += occurrences_record(
            automation=automation,
            members=members_with_birthday(on=today),
            occurrence=str(today.year),
        )
    return outcome


def expiring_points_run(*, today: dt.date | None = None) -> dict:
    """The daily expiry scan: members with points left in lots that expire on the day N days
    from today (program's time zone); one message per member and expiry day."""
    today = today or timezone.localdate()
    outcome = {}
    for automation in active_automations(trigger=AutomationTrigger.POINTS_EXPIRING):
        day = today + dt.timedelta(days=automation.days_before_expiry or 0)
        start, end = local_day_bounds(day)
        expiring = LedgerEntry.objects.filter(
            remaining_points__gt=0, expires_at__gte=start, expires_at__lt=end
        ).values("account__member_id")
        outcome[automation.pk] = occurrences_record(
            automation=automation,
            members=Member.objects.filter(pk__in=expiring),
            occurrence=expiry_occurrence(day),
        )
    return outcome


def subscribe() -> None:
    """Called from the app's ready(): listen to the other apps' events."""
    events.subscribe("member.confirmed", on_member_confirmed)
    events.subscribe("tier.changed", on_tier_changed)
    events.subscribe("segments.recalculated", on_segments_recalculated)
