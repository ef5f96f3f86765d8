"""Writes and actions of campaigns: messages, test sends, unsubscribes."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import smtplib
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import F, QuerySet, Value
from django.db.models.constants import OnConflict
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from loyalty.audit.models import AuditAction
from loyalty.audit.services import audit_record
from loyalty.errors import ValidationFailed
from loyalty.outbox.services import outbox_enqueue
from members.emails import sender_address
from members.models import ConsentChannel, Member, User
from members.services import consent_change
from segmentation.models import MemberScore
from segmentation.selectors import current_run

from .errors import AudienceEmpty, InvalidUnsubscribeLink, SendFailed, TransitionNotAllowed
from .models import (
    Campaign,
    CampaignKind,
    CampaignSettings,
    CampaignStatus,
    CampaignTransition,
    LinkClick,
    Message,
    Recipient,
    RecipientStatus,
    SkipReason,
    SuppressedAddress,
    SuppressionReason,
)
from .personalisation import member_facts, sample_facts
from .rendering import RenderedMessage, message_language, message_render
from .selectors import (
    audience,
    campaigns_due,
    capped_member_ids,
    results_cache_key,
)
from .tokens import unsubscribe_read, unsubscribe_url

SEND_TASK = "campaigns.tasks.send_campaign"


def list_unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 one-click unsubscribe: mail clients POST to the URL."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def email_build(
    *,
    rendered: RenderedMessage,
    to: str,
    unsubscribe: str,
    headers: dict[str, str] | None = None,
    connection=None,
) -> EmailMultiAlternatives:
    email = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=sender_address(),
        to=[to],
        headers={**list_unsubscribe_headers(unsubscribe), **(headers or {})},
        connection=connection,
    )
    email.attach_alternative(rendered.html, "text/html")
    return email


def message_preview(*, message: Message, member: Member | None, language: str) -> RenderedMessage:
    """The message as `member` (or the sample member) would receive it in `language` (or the
    fallback language); strict, so a preview shows an unknown variable as an error."""
    facts = member_facts(member=member) if member is not None else sample_facts()
    url = unsubscribe_url(member_id=member.pk if member is not None else 0)
    return message_render(
        message=message, facts=facts, preferred_language=language, unsubscribe_url=url, strict=True
    )


def message_test_send(
    *, message: Message, to: str, member: Member | None = None, language: str
) -> RenderedMessage:
    """Send the message as `member` (or the sample member) would receive it to `to`, at once
    (the program manager waits for the answer). The unsubscribe link is the member's own, so
    a test to a colleague should use the sample member. SendFailed if the server refuses."""
    rendered = message_preview(message=message, member=member, language=language)
    url = unsubscribe_url(member_id=member.pk if member is not None else 0)
    try:
        with get_connection() as connection:
            email_build(rendered=rendered, to=to, unsubscribe=url, connection=connection).send()
    except (smtplib.SMTPException, OSError) as error:
        raise SendFailed() from error
    return rendered


def unsubscribe_member(*, token: str) -> Member:
    """Look up whose link a token is (InvalidUnsubscribeLink for a forged or broken one)."""
    member_id, _campaign_id = unsubscribe_read(token)
    member = Member.objects.filter(pk=member_id).first()
    if member is None:
        raise InvalidUnsubscribeLink()
    return member


@transaction.atomic
def unsubscribe(*, token: str) -> Member:
    """Withdraw the member's e-mail consent at once (one-click POST or the confirmation page):
    a consent record with the source; a second unsubscribe records nothing new."""
    member = unsubscribe_member(token=token)
    _member_id, campaign_id = unsubscribe_read(token)
    source = (
        "unsubscribe link" if campaign_id is None else f"unsubscribe link, campaign {campaign_id}"
    )
    consent_change(member=member, granted=False, source=source, channel=ConsentChannel.EMAIL)
    if campaign_id is not None:
        _first(Recipient.objects.filter(campaign_id=campaign_id, member=member), "unsubscribed_at")
    return member


# --- campaigns: state transitions, each recorded with the staff user ------------------------

ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    CampaignStatus.SCHEDULED: (CampaignStatus.DRAFT,),
    CampaignStatus.DRAFT: (CampaignStatus.SCHEDULED,),
    CampaignStatus.SENDING: (
        CampaignStatus.DRAFT,
        CampaignStatus.SCHEDULED,
        CampaignStatus.PAUSED,
        CampaignStatus.FAILED,
    ),
    CampaignStatus.PAUSED: (CampaignStatus.SENDING,),
    CampaignStatus.CANCELLED: (
        CampaignStatus.DRAFT,
        CampaignStatus.SCHEDULED,
        CampaignStatus.SENDING,
        CampaignStatus.PAUSED,
        CampaignStatus.FAILED,
    ),
    CampaignStatus.SENT: (CampaignStatus.SENDING,),
    CampaignStatus.FAILED: (CampaignStatus.SENDING,),
}


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _transition(campaign: Campaign, to: str, *, by: User | None, note: str = "") -> Campaign:
    """Move the (locked) campaign to `to` if its state allows it, and record who did it."""
    if campaign.status not in ALLOWED_FROM[to]:
        raise TransitionNotAllowed(
            gettext("A campaign that is %(status)s cannot become %(to)s.")
            % {
                "status": campaign.get_status_display().lower(),
                "to": CampaignStatus(to).label.lower(),
            }
        )
    CampaignTransition.objects.create(
        campaign=campaign, from_status=campaign.status, to_status=to, by=by, note=note[:200]
    )
    campaign.status = to
    # Its cached results (selectors.campaign_results_cached) are computed afresh after a change.
    key = results_cache_key(campaign)
    transaction.on_commit(lambda: cache.delete(key))
    return campaign


def _check_sendable(campaign: Campaign) -> None:
    message_language(message=campaign.message, preferred=settings.LANGUAGE_CODE[:2])
    if not (campaign.segments or campaign.quadrants or campaign.rule_segments.exists()):
        raise AudienceEmpty()


@transaction.atomic
def campaign_schedule(*, campaign: Campaign, at: dt.datetime, by: User | None) -> Campaign:
    """Draft -> scheduled for `at` (an aware time; the admin reads it in the program's zone)."""
    campaign = _locked(campaign)
    if at <= timezone.now():
        raise ValidationFailed(gettext("Choose a time in the future."), field="scheduled_at")
    _check_sendable(campaign)
    _transition(campaign, CampaignStatus.SCHEDULED, by=by)
    campaign.scheduled_at = at
    campaign.awaiting_confirmation = False
    campaign.save(update_fields=["status", "scheduled_at", "awaiting_confirmation"])
    return campaign


@transaction.atomic
def campaign_unschedule(*, campaign: Campaign, by: User | None) -> Campaign:
    """Scheduled -> draft again (to edit it)."""
    campaign = _locked(campaign)
    _transition(campaign, CampaignStatus.DRAFT, by=by)
    campaign.awaiting_confirmation = False
    campaign.save(update_fields=["status", "awaiting_confirmation"])
    return campaign


@transaction.atomic
def campaign_send_now(*, campaign: Campaign, by: User | None, note: str = "") -> Campaign:
    """Draft or scheduled -> sending: freeze the audience (holdout, frequency cap) and hand the
    sending to the workers after the commit. Also how a person confirms a late campaign."""
    campaign = _locked(campaign)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise TransitionNotAllowed()  # a paused campaign resumes; it is never frozen again
    _check_sendable(campaign)
    _transition(campaign, CampaignStatus.SENDING, by=by, note=note)
    campaign.started_at = timezone.now()
    campaign.awaiting_confirmation = False
    campaign.save(update_fields=["status", "started_at", "awaiting_confirmation"])
    audience_freeze(campaign=campaign)
    outbox_enqueue(SEND_TASK, campaign.pk)
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign, by: User | None) -> Campaign:
    """Sending -> paused: workers stop claiming; what a worker holds is finished or released."""
    campaign = _locked(campaign)
    _transition(campaign, CampaignStatus.PAUSED, by=by)
    campaign.save(update_fields=["status"])
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, by: User | None) -> Campaign:
    """Paused or failed -> sending: the workers go on with the recipients still waiting (never
    again with one already sent: docs/campaigns.md)."""
    campaign = _locked(campaign)
    _transition(campaign, CampaignStatus.SENDING, by=by)
    campaign.failed_batches = 0
    campaign.save(update_fields=["status", "failed_batches"])
    outbox_enqueue(SEND_TASK, campaign.pk)
    return campaign


@transaction.atomic
def campaign_fail(*, campaign_id: int, note: str) -> Campaign | None:
    """Sending -> failed (a worker: the mail server refused us batch after batch, or the message
    cannot be rendered), with the reason as the transition's note. Workers stop at their next
    look; a person resumes (or cancels) it. None if it was not sending any more."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if campaign.status != CampaignStatus.SENDING:
        return None
    _transition(campaign, CampaignStatus.FAILED, by=None, note=note)
    campaign.save(update_fields=["status"])
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, by: User | None) -> Campaign:
    """Stop for good; recipients still waiting are recorded as skipped (cancelled)."""
    campaign = _locked(campaign)
    _transition(campaign, CampaignStatus.CANCELLED, by=by)
    campaign.finished_at = timezone.now()
    campaign.save(update_fields=["status", "finished_at"])
    Recipient.objects.filter(campaign=campaign, status=RecipientStatus.PENDING).update(
        status=RecipientStatus.SKIPPED, skip_reason=SkipReason.CANCELLED
    )
    return campaign


@transaction.atomic
def campaign_duplicate(*, campaign: Campaign, by: User | None) -> Campaign:
    """A new draft with the campaign's message, audience, exclusions, filters and holdout (not
    its schedule, state or recipients), created by `by` and recorded in the audit log."""
    copy = Campaign.objects.create(
        name=(gettext("%(name)s (copy)") % {"name": campaign.name})[:100],
        message=campaign.message,
        segments=list(campaign.segments),
        quadrants=list(campaign.quadrants),
        exclude_segments=list(campaign.exclude_segments),
        exclude_quadrants=list(campaign.exclude_quadrants),
        exclude_redeemed_days=campaign.exclude_redeemed_days,
        languages=list(campaign.languages),
        holdout_percent=campaign.holdout_percent,
        created_by=by,
    )
    copy.rule_segments.set(campaign.rule_segments.all())
    copy.exclude_rule_segments.set(campaign.exclude_rule_segments.all())
    copy.tiers.set(campaign.tiers.all())
    audit_record(
        actor=by,
        action=AuditAction.ADDED,
        obj=copy,
        description=gettext_noop("Campaign %(name)s added as a copy of %(source)s"),
        params={"name": copy.name, "source": campaign.name},
    )
    return copy


def campaigns_start_due(*, now: dt.datetime | None = None) -> list[int]:
    """The scheduler (every minute): start each scheduled campaign whose time has come; one
    whose time passed longer ago than the allowed lateness waits for a person instead."""
    now = now or timezone.now()
    lateness = dt.timedelta(minutes=CampaignSettings.load().max_lateness_minutes)
    started = []
    for campaign in campaigns_due(now=now):
        if now - campaign.scheduled_at > lateness:
            Campaign.objects.filter(
                pk=campaign.pk, status=CampaignStatus.SCHEDULED, awaiting_confirmation=False
            ).update(awaiting_confirmation=True)
            continue
        try:
            campaign_send_now(campaign=campaign, by=None, note="scheduled")
        except TransitionNotAllowed:
            continue  # started by a person in the meantime
        started.append(campaign.pk)
    return started


# --- freezing the audience ----------------------------------------------------------------

_FROZEN_COLUMNS = (
    "campaign_id",
    "member_id",
    "email",
    "language",
    "segment",
    "quadrant",
    "tier",
    "status",
    "skip_reason",
    "claimed_by",
    "attempts",
    "message_id",
    "last_error",
    "occurrence",
    "next_attempt_at",
)


@dataclass(frozen=True)
class HoldoutDraw:
    """A one-off campaign's holdout, drawn inside the INSERT ... SELECT that freezes it: the
    audience ranked by `holdout_rank_key` (MD5 of "<seed>:<member id>", then the member id) and
    the first `holdout_size(audience, percent)` held out (docs/campaigns.md, "Freeze")."""

    seed: int
    percent: int


def holdout_rank_key(seed: int, member_id: int) -> tuple[str, int]:
    """A member's place in the holdout draw of `seed`, as the database ranks it (the freeze
    statement computes the same MD5 in SQL): sorting the audience by this and taking the first
    `holdout_size` members reproduces a campaign's holdout from its recorded seed."""
    return hashlib.md5(f"{seed}:{member_id}".encode()).hexdigest(), member_id


def recipients_insert(
    *,
    campaign: Campaign,
    members: QuerySet[Member],
    occurrence: str = "",
    next_attempt_at: dt.datetime | None = None,
    returning: bool = False,
    holdout: HoldoutDraw | None = None,
    capped: QuerySet | None = None,
) -> int | list[tuple[int, int, str]]:
    """One `INSERT INTO campaigns_recipient ... SELECT` of a recipient per member, with their
    segment, quadrant and tier now. With `holdout`, the statement also draws the holdout
    (status `holdout`); members in `capped` (a query of member ids) who are not held out are
    written as skipped for the frequency cap: no second pass over the rows. With `returning`,
    a row that exists already (same campaign, member and occurrence: an event told twice, a
    daily scan run twice) is left alone (ON CONFLICT DO NOTHING) and the new rows' (id, member
    id, occurrence) are returned; without it, the number of rows written."""
    run = current_run()
    # The members with their tier, joined once to their score of the current run (one hash
    # join; a correlated subquery per member and column took most of the time at 500,000).
    rows = (
        members.annotate(frozen_tier=Coalesce(F("points_account__tier__name"), Value("")))
        .order_by()
        .values("id", "email", "language", "frozen_tier")
    )
    try:
        members_sql, members_params = rows.query.sql_with_params()
        capped_sql, capped_params = (
            capped.query.sql_with_params() if capped is not None else ("", ())
        )
    except EmptyResultSet:  # an audience that cannot hold anyone
        return [] if returning else 0
    table = connection.ops.quote_name(Recipient._meta.db_table)
    scores = connection.ops.quote_name(MemberScore._meta.db_table)
    source, source_params = f"({members_sql}) a", list(members_params)
    held, held_params = "1 = 0", []
    if holdout is not None:
        # Ranked by the same key as `holdout_rank_key` ("C": byte order of the hex digits,
        # whatever the database's collation); the first round-half-up(n x percent / 100) are
        # held out: rank <= (n x percent + 50) div 100, written without an integer division.
        draw_key = f"MD5(%s || CAST(m.id AS TEXT)){_collate_c()}"
        source = (
            f"(SELECT m.*, ROW_NUMBER() OVER (ORDER BY {draw_key}, m.id) AS holdout_rank, "
            f"COUNT(*) OVER () AS audience_size FROM ({members_sql}) m) a"
        )
        source_params = [f"{holdout.seed}:", *members_params]
        held, held_params = "a.holdout_rank * 100 <= a.audience_size * %s + 50", [holdout.percent]
    capped_join, over_cap = "", "1 = 0"
    if capped is not None:
        capped_join = f" LEFT JOIN ({capped_sql}) c ON c.member_id = a.id"
        over_cap = "c.member_id IS NOT NULL"
    select_sql = (
        "SELECT %s, a.id, a.email, a.language, COALESCE(s.segment, ''), "
        f"COALESCE(s.quadrant, ''), a.frozen_tier, "
        f"CASE WHEN {held} THEN %s WHEN {over_cap} THEN %s ELSE %s END, "
        f"CASE WHEN {held} THEN '' WHEN {over_cap} THEN %s ELSE '' END, "
        "'', 0, '', '', %s, %s "
        f"FROM {source} LEFT JOIN {scores} s ON s.run_id = %s AND s.member_id = a.id"
        f"{capped_join} ORDER BY a.id"
    )
    params = [
        campaign.pk,
        *held_params,
        RecipientStatus.HOLDOUT.value,
        RecipientStatus.SKIPPED.value,
        RecipientStatus.PENDING.value,
        *held_params,
        SkipReason.FREQUENCY_CAP.value,
        occurrence,
        next_attempt_at,
        *source_params,
        run.pk if run else None,
        *capped_params,
    ]
    columns = ", ".join(_FROZEN_COLUMNS)
    if not returning:
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({columns}) {select_sql}", params)
            return cursor.rowcount
    insert = connection.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    suffix = connection.ops.on_conflict_suffix_sql(
        [Recipient._meta.get_field(name) for name in ("campaign", "member", "occurrence")],
        OnConflict.IGNORE,
        None,
        None,
    )
    sql = f"{insert} {table} ({columns}) {select_sql} {suffix} RETURNING id, member_id, occurrence"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def _collate_c() -> str:
    return ' COLLATE "C"' if connection.vendor == "postgresql" else ""


def audience_freeze(*, campaign: Campaign) -> int:
    """Write one recipient row per member of the audience, with their segment, quadrant and
    tier now, the holdout drawn by a recorded seed and members at the frequency cap skipped,
    all in one INSERT ... SELECT (the audience never passes through Python). Runs once per
    campaign (in its start transaction)."""
    if Recipient.objects.filter(campaign=campaign).exists():
        return 0
    campaign.holdout_seed = secrets.randbits(62)
    campaign.save(update_fields=["holdout_seed"])
    with _set_based_plan():
        inserted = recipients_insert(
            campaign=campaign,
            members=audience(campaign=campaign),
            holdout=HoldoutDraw(seed=campaign.holdout_seed, percent=campaign.holdout_percent),
            capped=capped_member_ids(),
        )
    return inserted if isinstance(inserted, int) else len(inserted)


# For the one statement that reads a whole audience: hash joins, sorts and hashes in memory
# up to this much each (bounded; beyond it they spill to disk, as before).
_FREEZE_WORK_MEM = "64MB"


@contextmanager
def _set_based_plan():
    """PostgreSQL: no nested loops and more memory per sort or hash, for this transaction
    until the statement is done. The planner estimates the consent window (a filter on window
    functions) at a few hundred rows for 700,000 and chose probe-per-member nested loops; with
    stale statistics of the recipients table it ran the frequency-cap aggregate once per row."""
    if connection.vendor != "postgresql":
        yield
        return
    names = ("enable_nestloop", "work_mem")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s), current_setting(%s)", names)
        before = cursor.fetchone()
        cursor.execute(
            "SELECT set_config(%s, 'off', true), set_config(%s, %s, true)",
            [names[0], names[1], _FREEZE_WORK_MEM],
        )
    yield  # after an error the transaction is rolled back, and these local settings with it
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
            [names[0], before[0], names[1], before[1]],
        )


@transaction.atomic
def campaign_finish(*, campaign: Campaign) -> Campaign | None:
    """Sending -> sent once no recipient waits (a worker calls it; idempotent)."""
    campaign = _locked(campaign)
    if campaign.status != CampaignStatus.SENDING or campaign.kind == CampaignKind.AUTOMATION:
        return None  # an automation's campaign sends for as long as the automation is on
    waiting = Recipient.objects.filter(
        campaign=campaign,
        status__in=[RecipientStatus.PENDING, RecipientStatus.CLAIMED, RecipientStatus.SENDING],
    )
    if waiting.exists():
        return None
    _transition(campaign, CampaignStatus.SENT, by=None)
    campaign.finished_at = timezone.now()
    campaign.save(update_fields=["status", "finished_at"])
    return campaign


def campaigns_kick(*, now: dt.datetime | None = None) -> list[int]:
    """The scheduler's second duty: a sending campaign whose task was lost (worker and broker
    restarted) gets a new one once its dispatch time has passed."""
    now = now or timezone.now()
    kicked = []
    stale = Campaign.objects.filter(status=CampaignStatus.SENDING).exclude(dispatch_until__gt=now)
    for campaign_id in stale.values_list("pk", flat=True):
        Campaign.objects.filter(pk=campaign_id).update(dispatch_until=now + dt.timedelta(minutes=2))
        outbox_enqueue(SEND_TASK, campaign_id)
        kicked.append(campaign_id)
    return kicked


# --- tracking: opens, clicks, bounces and complaints ------------------------------------------


def _first(recipients, field: str, at: dt.datetime | None = None) -> int:
    """Set `field` on the recipients that have none yet (the first event wins); rows changed."""
    return recipients.filter(**{f"{field}__isnull": True}).update(**{field: at or timezone.now()})


@transaction.atomic
def recipient_opened(*, recipient_id: int, at: dt.datetime | None = None) -> bool:
    """Record the first open (the pixel or the provider's open event); True if it was the first."""
    return bool(_first(Recipient.objects.filter(pk=recipient_id), "opened_at", at))


@transaction.atomic
def recipient_clicked(*, recipient_id: int, url: str = "", at: dt.datetime | None = None) -> bool:
    """Record a click: the recipient's first click (and open: a click implies one) and the first
    click on this link. False (nothing recorded) for an unknown recipient."""
    recipient = Recipient.objects.filter(pk=recipient_id)
    if not recipient.exists():
        return False
    at = at or timezone.now()
    _first(recipient, "clicked_at", at)
    _first(recipient, "opened_at", at)
    if url:
        LinkClick.objects.bulk_create(
            [LinkClick(recipient_id=recipient_id, url=url[:2000], at=at)], ignore_conflicts=True
        )
    return True


def address_suppress(*, email: str, reason: str, note: str = "") -> None:
    """Put an address on the suppression list: once, case-insensitively (one INSERT that does
    nothing on the unique constraint; an address already on it keeps its first reason)."""
    SuppressedAddress.objects.bulk_create(
        [SuppressedAddress(email=email.strip(), reason=reason, note=note[:200])],
        ignore_conflicts=True,
    )


class DeliveryEvent:
    """What a provider's webhook reported, in our terms (campaigns.esp_events maps anymail's)."""

    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    OPEN = "open"
    CLICK = "click"


def recipient_for_message(*, message_id: str | None, email: str | None) -> Recipient | None:
    """The recipient of one of our messages by its Message-ID (with or without <>); the
    deterministic `<campaign-C.recipient-R@domain>` gives the row by primary key. The address,
    when given, must match."""
    match = re.fullmatch(r"<?campaign-(\d+)\.recipient-(\d+)@[^>]+>?", (message_id or "").strip())
    if match is None:
        return None
    bare = message_id.strip().strip("<>")  # type: ignore[union-attr]
    recipient = Recipient.objects.filter(
        pk=int(match.group(2)), campaign_id=int(match.group(1)), message_id=f"<{bare}>"
    ).first()
    if recipient is not None and email and recipient.email.lower() != email.lower():
        return None
    return recipient


@transaction.atomic
def delivery_event_record(
    *,
    kind: str,
    email: str,
    message_id: str | None = None,
    recipient_id: int | None = None,
    url: str = "",
    at: dt.datetime | None = None,
    source: str = "",
) -> Recipient | None:
    """Record one provider event in one transaction: a hard bounce or a complaint puts the
    address on the suppression list (even for a message we do not know) and stamps the
    recipient; an unsubscribe withdraws the member's e-mail consent; opens and clicks stamp the
    recipient. The recipient is found by our Message-ID, else by the recipient id the message
    carried as metadata (both checked against the address). Returns the recipient found."""
    recipient = recipient_for_message(message_id=message_id, email=email)
    if recipient is None and recipient_id is not None:
        recipient = Recipient.objects.filter(pk=recipient_id, email__iexact=email).first()
    at = at or timezone.now()
    rows = Recipient.objects.filter(pk=recipient.pk) if recipient is not None else None
    if kind in (DeliveryEvent.HARD_BOUNCE, DeliveryEvent.COMPLAINT):
        if email:
            address_suppress(
                email=email,
                reason=SuppressionReason.HARD_BOUNCE
                if kind == DeliveryEvent.HARD_BOUNCE
                else SuppressionReason.COMPLAINT,
                note=source,
            )
        if rows is not None:
            field = "bounced_at" if kind == DeliveryEvent.HARD_BOUNCE else "complained_at"
            _first(rows, field, at)
    elif kind == DeliveryEvent.UNSUBSCRIBE:
        member = (
            recipient.member
            if recipient is not None
            else Member.objects.filter(email__iexact=email).order_by("pk").first()
            if email
            else None
        )
        if member is not None:
            consent_change(
                member=member,
                granted=False,
                source=source or "mail provider unsubscribe",
                channel=ConsentChannel.EMAIL,
            )
        if rows is not None:
            _first(rows, "unsubscribed_at", at)
    elif kind == DeliveryEvent.OPEN and recipient is not None:
        recipient_opened(recipient_id=recipient.pk, at=at)
    elif kind == DeliveryEvent.CLICK and recipient is not None:
        recipient_clicked(recipient_id=recipient.pk, url=url, at=at)
    return recipient
