"""Automations: each trigger writes one recipient per member and occurrence, however often it
fires; the campaigns' pipeline sends them with its consent, cap, suppression and holdout rules
(docs/campaigns.md, "Automations")."""

import datetime as dt
from collections import Counter

import pytest
from django.contrib.auth.models import Group
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from campaigns import automations
from campaigns.models import (
    Automation,
    AutomationTrigger,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTransition,
    Message,
    Recipient,
    RecipientStatus,
    SkipReason,
    SuppressedAddress,
)
from campaigns.sending import recipients_claim
from loyalty import events
from loyalty.models import BirthdayCredit, LedgerEntry, ProgramSettings
from loyalty.reasons import BIRTHDAY
from loyalty.services import birthday_points_credit
from loyalty.services.tiers import tier_change_told
from members.models import ConsentChannel, MemberStatus
from members.selectors import consenting_member_ids
from members.services import confirmation_token, member_confirm_email
from tests.concurrency import race
from tests.factories import (
    CampaignFactory,
    ConsentRecordFactory,
    LedgerEntryFactory,
    MemberFactory,
    PointsAccountFactory,
    RecipientFactory,
    TierChangeFactory,
    TierFactory,
)

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def automation_of(message, program):
    """An automation that is on: `automation_of(trigger, **fields)`."""

    def make(trigger: str, *, active: bool = True, **fields) -> Automation:
        fields.setdefault("name", f"{trigger} automation")
        fields.setdefault("holdout_percent", 0)
        automation = automations.automation_save(
            automation=Automation(
                trigger=trigger, message=fields.pop("message", message), **fields
            ),
            by=None,
        )
        if active:
            automation = automations.automation_set_active(
                automation=automation, active=True, by=None
            )
        return automation

    return make


def consenting(count=1, **fields):
    members = MemberFactory.create_batch(count, **fields)
    for member in members:
        ConsentRecordFactory(member=member, channel=ConsentChannel.EMAIL, granted=True)
    return members


def rows(automation: Automation):
    return Recipient.objects.filter(campaign=automation.campaign_id)


# --- welcome --------------------------------------------------------------------------------


def test_welcome_is_sent_once_after_the_address_is_confirmed(automation_of, committed, smtp_sink):
    automation = automation_of(AutomationTrigger.WELCOME)
    (member,) = consenting(status=MemberStatus.PENDING, first_name="Noor", language="en")
    token = confirmation_token(member=member)

    committed(member_confirm_email, token=token)
    # The event told again (a retried transaction, a second subscriber run): nothing new.
    committed(events.emit, name="member.confirmed", member_id=member.pk)

    (received,) = smtp_sink.messages
    assert received["To"] == member.email
    assert received["Subject"] == "Hello Noor"
    (recipient,) = rows(automation)
    assert recipient.status == RecipientStatus.SENT
    assert recipient.occurrence == automations.WELCOME_OCCURRENCE
    assert received["Message-ID"] == recipient.message_id
    automation.campaign.refresh_from_db()
    assert automation.campaign.status == CampaignStatus.SENDING  # an automation never finishes


def test_an_automation_that_is_off_does_nothing(automation_of, committed, smtp_sink):
    never_on = automation_of(AutomationTrigger.WELCOME, active=False)
    switched_off = automation_of(AutomationTrigger.WELCOME, name="second")
    automations.automation_set_active(automation=switched_off, active=False, by=None)
    (member,) = consenting(status=MemberStatus.PENDING)

    committed(member_confirm_email, token=confirmation_token(member=member))

    assert not rows(never_on).exists() and not rows(switched_off).exists()
    assert smtp_sink.messages == []


# --- tiers ----------------------------------------------------------------------------------


def test_tier_reached_and_lowered_each_once_per_change(automation_of):
    silver, gold = TierFactory(name="Silver", rank=1), TierFactory(name="Gold", rank=2)
    reached = automation_of(AutomationTrigger.TIER_REACHED, tier=gold)
    reached_any = automation_of(AutomationTrigger.TIER_REACHED, name="any tier")
    lowered = automation_of(AutomationTrigger.TIER_LOWERED)
    (member,) = consenting()
    account = PointsAccountFactory(member=member)

    up_to_silver = TierChangeFactory(account=account, from_tier=None, to_tier=silver)
    up_to_gold = TierChangeFactory(account=account, from_tier=silver, to_tier=gold)
    down = TierChangeFactory(account=account, from_tier=gold, to_tier=silver, reason="downgrade")
    enrolment = TierChangeFactory(account=account, from_tier=None, to_tier=silver)
    enrolment.reason = "enrolment"
    for change in (up_to_silver, up_to_gold, down, up_to_gold, down, enrolment):
        tier_change_told(change)  # the gold change and the downgrade told twice

    assert list(rows(reached).values_list("occurrence", flat=True)) == [
        f"tier-change:{up_to_gold.pk}"
    ]
    assert sorted(rows(reached_any).values_list("occurrence", flat=True)) == sorted(
        [f"tier-change:{up_to_silver.pk}", f"tier-change:{up_to_gold.pk}"]
    )
    assert list(rows(lowered).values_list("occurrence", flat=True)) == [f"tier-change:{down.pk}"]


def test_a_tier_change_asks_nothing_while_no_automation_is_on_and_sees_one_turned_on(
    automation_of, django_assert_num_queries
):
    """Which triggers are on is kept in memory (a batch of purchases tells hundreds of tier
    changes): none on costs no query; turning one on, or off, counts from the next change."""
    gold = TierFactory(name="Gold", rank=2)
    (member,) = consenting()
    account = PointsAccountFactory(member=member)
    birthday = automation_of(AutomationTrigger.BIRTHDAY)  # on, but not for tier changes
    reached = automation_of(AutomationTrigger.TIER_REACHED, active=False)
    tier_change_told(TierChangeFactory(account=account, from_tier=None, to_tier=gold))  # loads
    first = TierChangeFactory(account=account, from_tier=None, to_tier=gold)
    with django_assert_num_queries(0):
        tier_change_told(first)

    automations.automation_set_active(automation=reached, active=True, by=None)
    second = TierChangeFactory(account=account, from_tier=None, to_tier=gold)
    tier_change_told(second)
    automations.automation_set_active(automation=reached, active=False, by=None)
    third = TierChangeFactory(account=account, from_tier=None, to_tier=gold)
    tier_change_told(third)

    assert list(rows(reached).values_list("occurrence", flat=True)) == [f"tier-change:{second.pk}"]
    assert not rows(birthday).exists()


# --- consent, suppression, cap, holdout, delay -----------------------------------------------


def test_consent_suppression_status_and_the_frequency_cap_apply(automation_of):
    automation = automation_of(AutomationTrigger.BIRTHDAY)
    birthday = {"birth_date": dt.date(1990, TODAY.month, TODAY.day)}
    (mailed,) = consenting(**birthday)
    (capped,) = consenting(**birthday)
    (suppressed,) = consenting(**birthday)
    (blocked,) = consenting(status=MemberStatus.BLOCKED, **birthday)
    no_consent = MemberFactory(**birthday)
    withdrawn = MemberFactory(**birthday)
    ConsentRecordFactory(member=withdrawn, channel=ConsentChannel.EMAIL, granted=False)
    SuppressedAddress.objects.create(email=suppressed.email.upper())
    other = CampaignFactory()
    for _ in range(3):  # the cap is 3 marketing e-mails in 7 days
        RecipientFactory(
            campaign=CampaignFactory(),
            member=capped,
            status=RecipientStatus.SENT,
            sent_at=timezone.now() - dt.timedelta(days=1),
        )
    RecipientFactory(campaign=other, member=mailed, status=RecipientStatus.SENT)

    automations.birthdays_run(today=TODAY)

    recorded = {row.member_id: row for row in rows(automation)}
    assert set(recorded) == {mailed.pk, capped.pk}
    assert recorded[mailed.pk].status == RecipientStatus.PENDING
    assert recorded[capped.pk].status == RecipientStatus.SKIPPED
    assert recorded[capped.pk].skip_reason == SkipReason.FREQUENCY_CAP
    assert {blocked.pk, no_consent.pk, withdrawn.pk, suppressed.pk}.isdisjoint(recorded)


def test_a_withdrawal_after_the_occurrence_is_respected_when_it_is_sent(
    automation_of, committed, smtp_sink
):
    automation = automation_of(AutomationTrigger.WELCOME, delay_hours=1)
    (member,) = consenting(status=MemberStatus.PENDING)
    committed(member_confirm_email, token=confirmation_token(member=member))
    ConsentRecordFactory(member=member, channel=ConsentChannel.EMAIL, granted=False)
    rows(automation).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))

    recipients_claim(campaign_id=automation.campaign_id, owner="worker", size=10)

    (recipient,) = rows(automation)
    assert (recipient.status, recipient.skip_reason) == (
        RecipientStatus.SKIPPED,
        SkipReason.NO_CONSENT,
    )
    assert smtp_sink.messages == []


def test_the_holdout_is_a_deterministic_draw_per_occurrence_and_never_mailed(
    automation_of, committed, smtp_sink
):
    automation = automation_of(AutomationTrigger.BIRTHDAY, holdout_percent=30)
    members = consenting(200, birth_date=dt.date(1990, TODAY.month, TODAY.day))
    seed = automation.campaign.holdout_seed

    committed(automations.birthdays_run, today=TODAY)

    held = set(
        rows(automation).filter(status=RecipientStatus.HOLDOUT).values_list("member_id", flat=True)
    )
    expected = {
        member.pk
        for member in members
        if automations.holdout_drawn(
            seed=seed, member_id=member.pk, occurrence=str(TODAY.year), percent=30
        )
    }
    assert held == expected
    assert 30 <= len(held) <= 90  # about 60 of 200
    assert len(smtp_sink.messages) == 200 - len(held)
    mailed_to = {message["To"] for message in smtp_sink.messages}
    assert mailed_to.isdisjoint({member.email for member in members if member.pk in held})
    # Another occurrence (next year) is drawn afresh, not the same members again.
    next_year = {
        member.pk
        for member in members
        if automations.holdout_drawn(
            seed=seed, member_id=member.pk, occurrence=str(TODAY.year + 1), percent=30
        )
    }
    assert next_year != held


def test_a_delayed_message_waits_for_its_time(automation_of, committed, smtp_sink):
    automation = automation_of(AutomationTrigger.WELCOME, delay_hours=2)
    (member,) = consenting(status=MemberStatus.PENDING)
    before = timezone.now()

    committed(member_confirm_email, token=confirmation_token(member=member))

    (recipient,) = rows(automation)
    assert recipient.status == RecipientStatus.PENDING
    assert before + dt.timedelta(hours=2) <= recipient.next_attempt_at
    assert recipient.next_attempt_at <= timezone.now() + dt.timedelta(hours=2)
    assert recipients_claim(campaign_id=automation.campaign_id, owner="early", size=10) == []
    assert smtp_sink.messages == []
    # Two hours later the scheduler's tick gives the campaign a send task.
    rows(automation).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    Campaign.objects.filter(pk=automation.campaign_id).update(dispatch_until=None)
    from campaigns.tasks import tick

    committed(tick)

    assert len(smtp_sink.messages) == 1
    assert rows(automation).get().status == RecipientStatus.SENT


# --- birthdays ------------------------------------------------------------------------------


def test_birthday_message_and_points_once_a_year(automation_of, committed, smtp_sink):
    message = Message.objects.create(
        name="Birthday",
        subject_en="Happy birthday {{ member.first_name }}",
        html_en="<p>You now have {{ points.balance }} {{ points.name }}.</p>",
        text_en="You now have {{ points.balance }} {{ points.name }}.",
    )
    automation = automation_of(AutomationTrigger.BIRTHDAY, message=message, birthday_points=250)
    (member,) = consenting(birth_date=dt.date(1990, 11, 26), first_name="Sam", language="en")
    (other_day,) = consenting(birth_date=dt.date(1990, 11, 27))
    (no_consent,) = [MemberFactory(birth_date=dt.date(1991, 11, 26))]

    first = committed(automations.birthdays_run, today=TODAY)
    again = committed(automations.birthdays_run, today=TODAY)

    assert first == {"messages": 1, "points": 2}  # points also without e-mail consent
    assert again == {"messages": 0, "points": 0}
    (received,) = smtp_sink.messages
    assert received["Subject"] == "Happy birthday Sam"
    assert "You now have 250 points." in received.get_body(("plain",)).get_content()
    entries = LedgerEntry.objects.filter(reason_key=BIRTHDAY)
    assert sorted(entries.values_list("account__member_id", "points")) == sorted(
        [(member.pk, 250), (no_consent.pk, 250)]
    )
    assert not BirthdayCredit.objects.filter(member=other_day).exists()
    assert rows(automation).get().occurrence == "2026"
    # Next year: again.
    committed(automations.birthdays_run, today=dt.date(2027, 11, 26))
    assert BirthdayCredit.objects.filter(member=member).count() == 2
    assert rows(automation).filter(member=member).count() == 2


@pytest.mark.parametrize(
    ("today", "celebrates"),
    [
        (dt.date(2027, 2, 28), True),  # no 29 February in 2027
        (dt.date(2027, 3, 1), False),
        (dt.date(2028, 2, 28), False),  # 2028 has one
        (dt.date(2028, 2, 29), True),
    ],
)
def test_a_29_february_birthday_is_on_28_february_in_other_years(automation_of, today, celebrates):
    automation = automation_of(AutomationTrigger.BIRTHDAY, birthday_points=10)
    (leapling,) = consenting(birth_date=dt.date(2000, 2, 29))
    (twenty_eighth,) = consenting(birth_date=dt.date(2000, 2, 28))

    automations.birthdays_run(today=today)

    members = set(rows(automation).values_list("member_id", flat=True))
    assert (leapling.pk in members) is celebrates
    assert (twenty_eighth.pk in members) is (today.month == 2 and today.day == 28)
    assert BirthdayCredit.objects.filter(member=leapling).exists() is celebrates


# --- expiring points ------------------------------------------------------------------------


def test_expiring_points_once_per_member_and_day_with_amount_and_date(
    automation_of, committed, smtp_sink
):
    message = Message.objects.create(
        name="Expiring",
        subject_en="Points expire soon",
        html_en="<p>{{ expiry.points }} {{ points.name }} expire on {{ expiry.date }}.</p>",
        text_en="{{ expiry.points }} {{ points.name }} expire on {{ expiry.date }}.",
    )
    automation = automation_of(
        AutomationTrigger.POINTS_EXPIRING, message=message, days_before_expiry=14
    )
    (member,) = consenting(language="en")
    (later,) = consenting()
    account = PointsAccountFactory(member=member, balance=1300)
    zone = timezone.get_current_timezone()
    day = TODAY + dt.timedelta(days=14)
    for hour, remaining in ((1, 120), (23, 80)):  # two lots on the day, one consumed part
        LedgerEntryFactory(
            account=account,
            points=200,
            remaining_points=remaining,
            expires_at=dt.datetime.combine(day, dt.time(hour, 30), tzinfo=zone),
        )
    LedgerEntryFactory(  # the next day: not this occurrence
        account=account,
        points=1000,
        remaining_points=1000,
        expires_at=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 30), tzinfo=zone),
    )
    LedgerEntryFactory(
        account=PointsAccountFactory(member=later),
        remaining_points=100,
        expires_at=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(9), tzinfo=zone),
    )

    committed(automations.expiring_points_run, today=TODAY)
    committed(automations.expiring_points_run, today=TODAY)

    (recipient,) = rows(automation)
    assert (recipient.member_id, recipient.occurrence) == (member.pk, "expiry:2026-12-10")
    (received,) = smtp_sink.messages
    assert "200 points expire on 10 December 2026." in received.get_body(("plain",)).get_content()


# --- segment entry --------------------------------------------------------------------------


NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def test_segment_entry_after_a_recalculation_is_one_set_based_insert(
    automation_of, django_assert_max_num_queries
):
    from loyalty import demo
    from segmentation import services as segmentation
    from segmentation.models import MemberScore

    demo.seed(demo.DemoSpec(members=400, lines=False, now=NOW))
    first = segmentation.recalculate(now=NOW)  # nothing to compare with: nobody enters
    automation = automation_of(AutomationTrigger.SEGMENT_ENTRY, segment="hibernating")
    assert not rows(automation).exists()

    second = segmentation.recalculate(now=NOW + dt.timedelta(days=200))

    was = MemberScore.objects.filter(run=first, segment="hibernating").values("member_id")
    entered = (
        MemberScore.objects.filter(run=second, segment="hibernating")
        .exclude(member_id__in=was)
        .filter(member__status=MemberStatus.ACTIVE)
        .filter(member_id__in=consenting_member_ids(channel=ConsentChannel.EMAIL))
    )
    expected = set(entered.values_list("member_id", flat=True))
    assert len(expected) > 5
    assert set(rows(automation).values_list("member_id", flat=True)) == expected
    assert set(rows(automation).values_list("occurrence", flat=True)) == {f"run:{second.pk}"}
    # Told again (the same run): nothing new, in a fixed number of statements.
    event = events.DomainEvent(
        name="segments.recalculated",
        member_id=None,
        data={"run_id": second.pk, "previous_run_id": first.pk},
    )
    with django_assert_max_num_queries(12):
        automations.on_segments_recalculated(event)
    assert rows(automation).count() == len(expected)
    assert not rows(automation).filter(~Q(member_id__in=expected)).exists()


# --- back office ----------------------------------------------------------------------------


def test_the_admin_lists_automations_and_a_manager_turns_one_on(
    client, staff_in, automation_of, message
):
    automation = automation_of(AutomationTrigger.WELCOME, active=False, name="Welcome")
    manager = staff_in("Program manager")
    client.force_login(manager)
    RecipientFactory(
        campaign=automation.campaign, status=RecipientStatus.SENT, sent_at=timezone.now()
    )

    listing = client.get(reverse("admin:campaigns_automation_changelist")).content.decode()
    switch = client.post(reverse("admin:campaigns_automation_switch", args=[automation.pk, "on"]))

    assert "Welcome" in listing and "Welcome (e-mail address confirmed)" in listing
    assert switch.status_code == 302
    automation.refresh_from_db()
    assert automation.active
    transition = CampaignTransition.objects.filter(campaign=automation.campaign).last()
    assert (transition.to_status, transition.by) == (CampaignStatus.SENDING, manager)
    # The automation's campaign is not among the one-off campaigns.
    campaigns = client.get(reverse("admin:campaigns_campaign_changelist")).context["cl"]
    assert automation.campaign_id not in [campaign.pk for campaign in campaigns.result_list]


def test_an_automation_is_created_in_the_admin_with_its_campaign(client, staff_in, message):
    client.force_login(staff_in("Program manager"))
    data = {
        "name": "Win back",
        "trigger": AutomationTrigger.SEGMENT_ENTRY,
        "message": message.pk,
        "delay_hours": "0",
        "birthday_points": "0",
        "holdout_percent": "10",
    }

    refused = client.post(reverse("admin:campaigns_automation_add"), data)
    created = client.post(reverse("admin:campaigns_automation_add"), {**data, "segment": "at_risk"})

    assert "Choose the segment" in refused.content.decode()
    assert created.status_code == 302
    automation = Automation.objects.get()
    assert not automation.active
    assert automation.campaign.kind == CampaignKind.AUTOMATION
    assert automation.campaign.holdout_seed is not None
    assert automation.campaign.message == message


def test_a_support_agent_views_automations_but_cannot_switch_or_change_them(
    client, staff_in, automation_of
):
    automation = automation_of(AutomationTrigger.WELCOME, active=False)
    client.force_login(staff_in("Support agent"))

    page = client.get(reverse("admin:campaigns_automation_change", args=[automation.pk]))
    switch = client.post(reverse("admin:campaigns_automation_switch", args=[automation.pk, "on"]))
    change = client.post(
        reverse("admin:campaigns_automation_change", args=[automation.pk]),
        {"name": "Hacked", "trigger": "welcome", "message": automation.message_id},
    )

    assert page.status_code == 200
    assert "Turn on" not in page.content.decode()
    assert switch.status_code == 403
    assert change.status_code == 403
    automation.refresh_from_db()
    assert not automation.active and automation.name != "Hacked"
    assert (
        Group.objects.get(name="Support agent")
        .permissions.filter(codename="view_automation")
        .exists()
    )


# --- PostgreSQL: birthday points under a race -----------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_birthday_points_are_credited_once_when_the_task_runs_twice_at_once(
    program, message, race_round
):
    ProgramSettings.load()
    automation = automations.automation_save(
        automation=Automation(
            name="Birthday",
            trigger=AutomationTrigger.BIRTHDAY,
            message=message,
            birthday_points=100,
            holdout_percent=0,
        ),
        by=None,
    )
    automations.automation_set_active(automation=automation, active=True, by=None)
    members = consenting(5, birth_date=dt.date(1980, TODAY.month, TODAY.day))

    direct = race(
        8,
        lambda i: (
            "credited"
            if birthday_points_credit(member_id=members[0].pk, points=100, year=TODAY.year)
            else "already"
        ),
    )
    scans = race(4, lambda i: automations.birthdays_run(today=TODAY) and "ran")

    assert direct == Counter({"credited": 1, "already": 7})
    assert scans == Counter({"ran": 4})
    assert BirthdayCredit.objects.count() == 5
    assert Counter(
        LedgerEntry.objects.filter(reason_key=BIRTHDAY).values_list("account__member_id", flat=True)
    ) == Counter({member.pk: 1 for member in members})
    assert rows(automation).count() == 5
    assert (
        sorted(
            LedgerEntry.objects.filter(reason_key=BIRTHDAY).values_list(
                "account__balance", flat=True
            )
        )
        == [100] * 5
    )


def test_an_automations_bonus_offer_is_its_campaigns_and_pays_its_mailed_members(
    client, staff_in, message, committed, smtp_sink
):
    from loyalty.models import EntryKind, Partner
    from loyalty.reasons import CAMPAIGN_BONUS
    from loyalty.services import purchase_record

    client.force_login(staff_in("Program manager"))
    data = {
        "name": "Welcome with a bonus",
        "trigger": AutomationTrigger.WELCOME,
        "message": message.pk,
        "delay_hours": "0",
        "birthday_points": "0",
        "holdout_percent": "0",
        "bonus_kind": "multiplier",
        "bonus_days": "7",
    }

    refused = client.post(
        reverse("admin:campaigns_automation_add"), {**data, "bonus_multiplier": "1.00"}
    )
    created = client.post(
        reverse("admin:campaigns_automation_add"),
        {**data, "bonus_kind": "fixed", "bonus_points": "40"},
    )

    assert "A multiplier above 1.00" in refused.content.decode()
    assert created.status_code == 302
    automation = Automation.objects.get()
    assert (automation.campaign.bonus_kind, automation.campaign.bonus_points) == ("fixed", 40)
    automations.automation_set_active(automation=automation, active=True, by=None)
    (member,) = consenting(status=MemberStatus.PENDING)
    committed(member_confirm_email, token=confirmation_token(member=member))
    assert len(smtp_sink.messages) == 1

    purchase_record(
        partner=Partner.objects.create(name="Shop"), external_id="W1", member=member, amount="20.00"
    )

    (bonus,) = LedgerEntry.objects.filter(account__member=member, kind=EntryKind.BONUS)
    assert bonus.points == 40
    assert bonus.reason_key == CAMPAIGN_BONUS
    assert bonus.reason_params["campaign_id"] == automation.campaign_id


def test_the_list_counts_each_automations_messages_of_the_last_30_days(automation_of):
    from django.utils import timezone

    from campaigns.selectors import automations_with_sent
    from tests.factories import RecipientFactory

    busy = automation_of(AutomationTrigger.WELCOME)
    quiet = automation_of(AutomationTrigger.BIRTHDAY)
    now = timezone.now()
    for days_ago, status in ((1, "sent"), (29, "sent"), (31, "sent"), (1, "failed")):
        RecipientFactory(
            campaign=busy.campaign, status=status, sent_at=now - dt.timedelta(days=days_ago)
        )
    RecipientFactory(campaign=quiet.campaign, status="pending")

    counted = {a.pk: a.sent_recently for a in automations_with_sent(days=30, now=now)}

    assert counted == {busy.pk: 2, quiet.pk: 0}
