"""Audience, frozen recipients, holdout, consent, suppression, frequency cap, states."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import selectors, services
from campaigns.errors import TransitionNotAllowed
from campaigns.models import (
    CampaignSettings,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    SkipReason,
    SuppressedAddress,
)
from members.services import consent_set
from tests.factories import (
    ConsentRecordFactory,
    RedemptionFactory,
    RewardFactory,
    StaffUserFactory,
    TierFactory,
)

pytestmark = pytest.mark.django_db


def test_audience_is_segment_members_with_consent_active_and_not_suppressed(scored, campaign_of):
    wanted = scored(3)
    scored(2, consent=False)  # withdrew
    scored(1, consent=None)  # never asked: no opt-in
    scored(1, status="blocked")
    scored(2, segment="lost")  # another segment
    suppressed = scored(1)[0]
    SuppressedAddress.objects.create(email=suppressed.email.upper(), reason="hard_bounce")

    audience = selectors.audience(campaign=campaign_of())

    assert set(audience) == set(wanted)


def test_profiling_objectors_are_not_targeted(scored, campaign_of):
    kept, objector = scored(2)
    ConsentRecordFactory(member=objector, channel="profiling", granted=False)

    assert list(selectors.audience(campaign=campaign_of())) == [kept]


def test_exclusions_tier_and_language_filters(scored, campaign_of, current_run):
    from loyalty.models import PointsAccount
    from tests.factories import RuleSegmentMemberFactory

    gold = TierFactory(name="Gold", rank=5, threshold=1000)
    english = scored(2, language="en")
    dutch = scored(1, language="nl")[0]
    redeemed = english[1]
    RedemptionFactory(member=redeemed, reward=RewardFactory(), points=100, status="fulfilled")
    kept = english[0]
    excluded_rule = RuleSegmentMemberFactory(run=current_run, member=dutch).segment
    for member in [*english, dutch]:
        PointsAccount.objects.update_or_create(member=member, defaults={"tier": gold})

    campaign = campaign_of(exclude_redeemed_days=30)
    campaign.exclude_rule_segments.add(excluded_rule)
    assert set(selectors.audience(campaign=campaign)) == {kept}

    campaign = campaign_of(languages=["nl"])
    assert set(selectors.audience(campaign=campaign)) == {dutch}

    campaign = campaign_of()
    campaign.tiers.add(TierFactory(name="Platinum", rank=9, threshold=5000))
    assert list(selectors.audience(campaign=campaign)) == []


def test_the_frozen_audience_keeps_segment_and_draws_the_holdout_with_a_recorded_seed(
    scored, campaign_of, committed
):
    scored(40)
    campaign = campaign_of(holdout_percent=25)
    staff = StaffUserFactory()

    committed(services.campaign_send_now, campaign=campaign, by=staff)  # eager: sends at once

    campaign.refresh_from_db()
    rows = Recipient.objects.filter(campaign=campaign)
    assert rows.count() == 40
    assert set(rows.values_list("segment", flat=True)) == {"champions"}
    holdout = set(rows.filter(status=RecipientStatus.HOLDOUT).values_list("member_id", flat=True))
    assert len(holdout) == 10
    assert campaign.holdout_seed is not None
    assert rows.filter(status=RecipientStatus.SENT).count() == 30
    assert campaign.status == CampaignStatus.SENT
    assert list(campaign.transitions.values_list("to_status", "by")) == [
        ("sending", staff.pk),
        ("sent", None),
    ]
    # The same seed and audience give the same holdout.
    import random

    ids = list(rows.order_by("member_id").values_list("pk", flat=True))
    again = random.Random(campaign.holdout_seed).sample(ids, 10)
    assert set(rows.filter(pk__in=again).values_list("member_id", flat=True)) == holdout


def test_the_holdout_is_never_mailed(scored, campaign_of, mailoutbox, committed):
    scored(20)
    campaign = campaign_of(holdout_percent=50)

    committed(services.campaign_send_now, campaign=campaign, by=None)

    held = Recipient.objects.filter(campaign=campaign, status=RecipientStatus.HOLDOUT)
    mailed = {message.to[0] for message in mailoutbox}
    assert len(mailoutbox) == 10
    assert mailed.isdisjoint(held.values_list("email", flat=True))


def test_members_at_the_frequency_cap_are_skipped_with_the_reason(
    scored, campaign_of, mailoutbox, committed
):
    CampaignSettings.objects.update_or_create(pk=1, defaults={"frequency_cap": 2})
    members = scored(3)
    for _ in range(2):
        committed(services.campaign_send_now, campaign=campaign_of(holdout_percent=0), by=None)
    assert len(mailoutbox) == 6

    third = campaign_of(holdout_percent=0)
    committed(services.campaign_send_now, campaign=third, by=None)

    rows = Recipient.objects.filter(campaign=third)
    assert len(mailoutbox) == 6
    assert set(rows.values_list("status", "skip_reason")) == {
        (RecipientStatus.SKIPPED, SkipReason.FREQUENCY_CAP)
    }
    assert rows.count() == len(members)


def test_a_member_who_unsubscribes_after_the_freeze_is_not_mailed(scored, campaign_of, mailoutbox):
    first, second = scored(2)
    campaign = campaign_of(holdout_percent=0)
    services.campaign_schedule(
        campaign=campaign, at=timezone.now() + dt.timedelta(hours=1), by=None
    )
    campaign.refresh_from_db()
    # Freeze without sending: a paused campaign (as if a worker had not started yet).
    from campaigns.services import audience_freeze

    audience_freeze(campaign=campaign)
    consent_set(member=second, granted=False, source="portal")
    from campaigns.sending import campaign_send

    campaign.status = CampaignStatus.SENDING
    campaign.save()
    campaign_send(campaign_id=campaign.pk, owner="test")

    assert [message.to[0] for message in mailoutbox] == [first.email]
    assert Recipient.objects.get(member=second).skip_reason == SkipReason.NO_CONSENT


def test_transitions_are_checked_and_recorded(scored, campaign_of):
    scored(1)
    campaign = campaign_of()
    staff = StaffUserFactory()

    with pytest.raises(TransitionNotAllowed):
        services.campaign_pause(campaign=campaign, by=staff)
    services.campaign_schedule(
        campaign=campaign, at=timezone.now() + dt.timedelta(days=1), by=staff
    )
    services.campaign_cancel(campaign=campaign, by=staff)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert list(campaign.transitions.values_list("from_status", "to_status", "by")) == [
        ("draft", "scheduled", staff.pk),
        ("scheduled", "cancelled", staff.pk),
    ]
    with pytest.raises(TransitionNotAllowed):
        services.campaign_send_now(campaign=campaign, by=staff)


def test_a_campaign_long_overdue_waits_for_confirmation(scored, campaign_of, mailoutbox, committed):
    scored(2)
    CampaignSettings.objects.update_or_create(pk=1, defaults={"max_lateness_minutes": 30})
    on_time = campaign_of(name="On time", holdout_percent=0)
    late = campaign_of(name="Late", holdout_percent=0)
    now = timezone.now()
    for campaign in (on_time, late):
        services.campaign_schedule(campaign=campaign, at=now + dt.timedelta(minutes=1), by=None)

    started = committed(services.campaigns_start_due, now=now + dt.timedelta(minutes=5))
    assert started == [on_time.pk, late.pk]
    on_time.refresh_from_db()
    assert on_time.status == CampaignStatus.SENT

    again = campaign_of(name="Again", holdout_percent=0)
    services.campaign_schedule(campaign=again, at=now + dt.timedelta(minutes=1), by=None)
    assert services.campaigns_start_due(now=now + dt.timedelta(hours=3)) == []
    again.refresh_from_db()
    assert (again.status, again.awaiting_confirmation) == (CampaignStatus.SCHEDULED, True)

    committed(services.campaign_send_now, campaign=again, by=StaffUserFactory(), note="late")
    again.refresh_from_db()
    assert again.status == CampaignStatus.SENT
