"""Sending a campaign exactly once per recipient: the claim/record protocol.

See docs/campaigns.md for the states, the crash windows and why each is closed. In short:

1. A worker *claims* a batch with one conditional UPDATE (pending, or claimed by a worker
   whose lease expired, or by this same task id after a redelivery) -> `claimed`, owner, lease.
2. Per recipient, a conditional UPDATE `claimed -> sending` (owner checked) records the
   Message-ID and commits *before* the SMTP transaction; the message goes out over the
   batch's one SMTP connection; a second conditional UPDATE `sending -> sent` commits after the
   server's 250. Nothing but the owner moves a row out of `claimed`/`sending` while its lease
   runs, and nothing moves a row out of `sent`.
3. Pause: the worker stops claiming and hands its unsent claims back (`claimed -> pending`);
   resume claims only `pending`, so nobody is sent twice (listmonk #2070/#2313).
4. Crash: claims of a dead worker become claimable when their lease ends, or at once when the
   broker redelivers the same task (same task id = same owner), so nobody is lost (#3022).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import smtplib
import time
from dataclasses import dataclass

from anymail.exceptions import AnymailInvalidAddress, AnymailRecipientsRefused
from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import DatabaseError, connection, transaction
from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext

from members.models import ConsentChannel, MemberStatus
from members.selectors import consenting_member_ids

from .models import (
    Campaign,
    CampaignKind,
    CampaignSettings,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    SkipReason,
)
from .personalisation import member_facts
from .ratelimit import NoLimit, Rate, hourly_budget_wait, send_rate
from .rendering import message_render
from .selectors import suppressed_emails
from .tokens import unsubscribe_url
from .tracking import message_track

logger = logging.getLogger(__name__)

# How long a claim holds without the owner renewing it (a batch renews it as it goes).
CLAIM_LEASE = dt.timedelta(minutes=5)
MAX_ATTEMPTS = 6
# A task sends for at most this long, then hands the rest to a fresh task (short tasks: a
# redelivery repeats little, and no broker visibility timeout is ever reached).
TIME_SLICE_SECONDS = 60.0


def retry_delay(attempts: int, base: int) -> dt.timedelta:
    """Exponential backoff with jitter: base, 2 x base, 4 x base ... at most an hour."""
    seconds = min(base * 2 ** max(attempts - 1, 0), 3600)
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def message_id_for(recipient_id: int, campaign_id: int) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ") or "localhost"
    return f"<campaign-{campaign_id}.recipient-{recipient_id}@{domain}>"


def _claimable(campaign_id: int, owner: str, now: dt.datetime) -> Q:
    waiting = Q(status=RecipientStatus.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    # A dead worker's claims (lease over), or this task's own after a redelivery.
    abandoned = Q(status__in=[RecipientStatus.CLAIMED, RecipientStatus.SENDING]) & (
        Q(claim_expires_at__lt=now) | Q(claimed_by=owner)
    )
    return Q(campaign_id=campaign_id) & (waiting | abandoned)


@transaction.atomic
def recipients_claim(*, campaign_id: int, owner: str, size: int) -> list[Recipient]:
    """Claim up to `size` recipients for `owner` in one conditional UPDATE; returns them.

    Rows found in `sending` were handed to the mail server by a worker that died before it
    recorded the answer: they are sent again with the same Message-ID (docs/campaigns.md)."""
    now = timezone.now()
    candidates = Recipient.objects.filter(_claimable(campaign_id, owner, now)).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True)
    ids = list(candidates.values_list("pk", flat=True)[:size])
    if not ids:
        return []
    Recipient.objects.filter(Q(pk__in=ids) & _claimable(campaign_id, owner, now)).update(
        status=RecipientStatus.CLAIMED, claimed_by=owner, claim_expires_at=now + CLAIM_LEASE
    )
    claimed = Recipient.objects.filter(pk__in=ids, claimed_by=owner, status=RecipientStatus.CLAIMED)
    _skip_no_longer_eligible(claimed)
    return list(claimed.select_related("member").order_by("pk"))


def _skip_no_longer_eligible(claimed) -> None:
    """Consent, status and suppression as of now: a member who unsubscribed after the audience
    was frozen is not mailed (set-based, per batch)."""
    # The consent of the batch's members only (not a pass over the whole program per batch).
    consenting = consenting_member_ids(
        channel=ConsentChannel.EMAIL, among=claimed.values("member_id")
    )
    claimed.exclude(member_id__in=consenting).update(
        status=RecipientStatus.SKIPPED, skip_reason=SkipReason.NO_CONSENT, claimed_by=""
    )
    claimed.exclude(member__status=MemberStatus.ACTIVE).update(
        status=RecipientStatus.SKIPPED, skip_reason=SkipReason.INACTIVE, claimed_by=""
    )
    claimed.alias(address=Lower("email")).filter(address__in=suppressed_emails()).update(
        status=RecipientStatus.SKIPPED, skip_reason=SkipReason.SUPPRESSED, claimed_by=""
    )


# Recipients moved to `sending` in one commit (the commit waits for the disk: one wait for a
# group, not one per message). Only without a send rate: with one, a row is moved alone, after
# its slot was taken, so no `sending` row waits for a slot (docs/campaigns.md).
SENDING_GROUP = 20


def _mark_sending(recipients: list[Recipient], owner: str) -> set[int]:
    """claimed|sending -> sending with their Message-IDs, committed before the SMTP transactions
    of these recipients; returns the ids still ours (another worker may have taken one over
    after our lease ran out)."""
    ids = [recipient.pk for recipient in recipients]
    mine = Recipient.objects.filter(
        pk__in=ids,
        claimed_by=owner,
        status__in=[RecipientStatus.CLAIMED, RecipientStatus.SENDING],
    )
    with transaction.atomic():
        marked = mine.update(
            status=RecipientStatus.SENDING,
            message_id=Case(
                *[When(pk=r.pk, then=Value(r.message_id)) for r in recipients],
                output_field=CharField(),
            ),
            attempts=F("attempts") + 1,
            claim_expires_at=timezone.now() + CLAIM_LEASE,
        )
        if marked == len(ids):
            return set(ids)
        # Our UPDATE locks the rows it changed until the commit: this reads exactly them.
        return set(
            Recipient.objects.filter(
                pk__in=ids, claimed_by=owner, status=RecipientStatus.SENDING
            ).values_list("pk", flat=True)
        )


def _unmark_sending(ids: set[int], owner: str) -> None:
    """Hand back rows of a group that were never given to the mail server (the batch stopped
    before them): sending -> claimed, the attempt not counted; `_release` then frees them."""
    if ids:
        Recipient.objects.filter(
            pk__in=ids, claimed_by=owner, status=RecipientStatus.SENDING
        ).update(status=RecipientStatus.CLAIMED, attempts=F("attempts") - 1)


def _record(recipient: Recipient, owner: str, **fields) -> None:
    with transaction.atomic():
        Recipient.objects.filter(
            pk=recipient.pk, claimed_by=owner, status=RecipientStatus.SENDING
        ).update(**fields)


def _record_sent(recipient: Recipient, owner: str) -> None:
    """sending -> sent, right after the server's 250.

    On PostgreSQL this one commit does not wait for the disk (`synchronous_commit` off for this
    transaction only, in the same statement, one round trip): a crash of the database server
    itself could lose the mark, and then the row stays `sending` and is sent again with the same
    Message-ID, the recovery of the crash window after the 250 (docs/campaigns.md,
    docs/decisions.md). The next group's `sending` commit waits for the disk and so makes every
    earlier mark durable. Never for the `sending` mark."""
    now = timezone.now()
    client_binding = not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
    if connection.vendor != "postgresql" or connection.in_atomic_block or not client_binding:
        _record(
            recipient,
            owner,
            status=RecipientStatus.SENT,
            sent_at=now,
            claimed_by="",
            claim_expires_at=None,
        )
        return
    table = connection.ops.quote_name(Recipient._meta.db_table)
    with connection.cursor() as cursor:
        # Two statements in one simple query: one implicit transaction, so SET LOCAL holds for
        # the UPDATE's commit and nothing else (Django's client-side binding cursor).
        cursor.execute(
            f"SET LOCAL synchronous_commit TO OFF; UPDATE {table} SET status = %s, sent_at = %s, "
            "claimed_by = '', claim_expires_at = NULL "
            "WHERE id = %s AND claimed_by = %s AND status = %s",
            [RecipientStatus.SENT, now, recipient.pk, owner, RecipientStatus.SENDING],
        )


# A mail provider (anymail) that refuses the address itself (invalid, or on its own suppression
# list): permanent, like an SMTP 5xx. Its API errors are OSErrors (requests), retried.
_REFUSED = (AnymailRecipientsRefused, AnymailInvalidAddress)


def _is_permanent(error: Exception) -> bool:
    """5xx answers are permanent for this address; 4xx, dropped connections and timeouts are
    transient."""
    if isinstance(error, _REFUSED):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in error.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    code = getattr(error, "smtp_code", None)
    return isinstance(code, int) and 500 <= code < 600


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    stopped: bool = False  # paused, cancelled or failed while sending
    server_error: str = ""  # the mail server could not be reached or refused us as a sender
    wait: float = 0.0  # the hourly budget is spent, or Redis/the database away: come back later


# Errors that say nothing about the recipient but that the server will not take our mail at all
# (refused connection, authentication, our sender address): the batch stops, the recipient is
# not charged an attempt, and after SERVER_FAILURES_BEFORE_FAILED such batches in a row the
# campaign is `failed` (docs/campaigns.md).
SERVER_FAILURES_BEFORE_FAILED = 5


# After the cache or the database failed while rendering: the task comes back this much later.
INFRASTRUCTURE_WAIT = 5.0


def _is_infrastructure(error: Exception) -> bool:
    import redis

    return isinstance(error, (DatabaseError, OSError, redis.RedisError))


def _refuses_us(error: Exception) -> bool:
    """An answer to a message that is about us, not the recipient (the sender address, the
    login): the server would refuse every message of the batch the same way."""
    return isinstance(
        error,
        (smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError),
    )


def _still_sending(campaign_id: int) -> bool:
    return Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING).exists()


def _renew(campaign_id: int, owner: str) -> None:
    """Extend the lease of the claims this worker still holds (a long or rate-limited batch)."""
    Recipient.objects.filter(
        campaign_id=campaign_id, claimed_by=owner, status=RecipientStatus.CLAIMED
    ).update(claim_expires_at=timezone.now() + CLAIM_LEASE)


def _release(campaign_id: int, owner: str) -> None:
    """Hand unsent claims back (pause, cancel, end of a time slice)."""
    Recipient.objects.filter(
        campaign_id=campaign_id, claimed_by=owner, status=RecipientStatus.CLAIMED
    ).update(status=RecipientStatus.PENDING, claimed_by="", claim_expires_at=None)


def _server_failure(campaign_id: int, error: str) -> bool:
    """Count a batch in which the server could not be used; True once the campaign failed."""
    from .services import campaign_fail

    Campaign.objects.filter(pk=campaign_id).update(failed_batches=F("failed_batches") + 1)
    failures = Campaign.objects.filter(pk=campaign_id).values_list("failed_batches", flat=True)
    if (failures.first() or 0) < SERVER_FAILURES_BEFORE_FAILED:
        return False
    return campaign_fail(campaign_id=campaign_id, note=error) is not None


def _prepare(*, campaign: Campaign, recipient: Recipient, smtp) -> EmailMultiAlternatives:
    """The recipient's message: rendered, tracked, with its Message-ID (no state changes)."""
    from .services import email_build

    recipient.message_id = message_id_for(recipient.pk, campaign.pk)
    url = unsubscribe_url(member_id=recipient.member_id, campaign_id=campaign.pk)
    rendered = message_render(
        message=campaign.message,
        facts=member_facts(member=recipient.member, occurrence=recipient.occurrence),
        preferred_language=recipient.language,
        unsubscribe_url=url,
    )
    rendered = message_track(rendered=rendered, recipient_id=recipient.pk, unsubscribe_url=url)
    email = email_build(
        rendered=rendered,
        to=recipient.email,
        unsubscribe=url,
        headers={"Message-ID": recipient.message_id},
        connection=smtp,
    )
    # Returned in a provider's webhook events (anymail), for providers that replace the
    # Message-ID; SMTP ignores it.
    email.metadata = {"loyalty_recipient": str(recipient.pk)}  # type: ignore[attr-defined]
    return email


def batch_send(
    *, campaign: Campaign, recipients: list[Recipient], owner: str, rate: Rate
) -> BatchResult:
    """Send each claimed recipient their one message over one reused SMTP connection.

    Per group of recipients (SENDING_GROUP without a send rate, else one): render them, then
    move them to `sending` in one commit, then per recipient the SMTP transaction and the
    `sent` mark. A row marked `sending` but not yet given to the server when the batch stops
    is handed back (`_unmark_sending`)."""
    from .services import campaign_fail

    result = BatchResult()
    retry_base = CampaignSettings.load().retry_backoff_seconds
    group = SENDING_GROUP if isinstance(rate, NoLimit) else 1
    smtp = get_connection()
    unsent: set[int] = set()  # marked `sending` by us, never handed to the server
    stop = False
    try:
        for start in range(0, len(recipients), group):
            if start and start % 20 == 0:
                if not _still_sending(campaign.pk):
                    result.stopped = True
                    break
                _renew(campaign.pk, owner)
            prepared = []
            for recipient in recipients[start : start + group]:
                try:
                    prepared.append(
                        (recipient, _prepare(campaign=campaign, recipient=recipient, smtp=smtp))
                    )
                except Exception as error:
                    if _is_infrastructure(error):
                        # Redis (the cache) or the database away for a moment: not the message.
                        logger.warning("campaign %s: rendering waits: %r", campaign.pk, error)
                        result.wait = INFRASTRUCTURE_WAIT
                    else:
                        # The message itself is broken (it was checked on save): nobody would
                        # get it.
                        logger.exception("campaign %s: the message cannot be rendered", campaign.pk)
                        campaign_fail(
                            campaign_id=campaign.pk,
                            note=gettext("The message cannot be rendered: %(error)s")
                            % {"error": error},
                        )
                        result.stopped = True
                    stop = True
                    break
            if stop:
                break
            marked: set[int] | None = None
            for recipient, email in prepared:
                if getattr(smtp, "connection", True) is None:
                    try:
                        smtp.open()
                    except Exception as error:  # refused, timed out, TLS or login refused
                        result.server_error = f"{type(error).__name__}: {error}"[:200]
                        stop = True
                        break
                wait = rate.acquire()
                if wait:
                    result.wait = wait
                    stop = True
                    break
                if marked is None:
                    marked = _mark_sending([r for r, _email in prepared], owner)
                    unsent = set(marked)
                if recipient.pk not in marked:
                    continue  # taken over by another worker after our lease ended
                unsent.discard(recipient.pk)  # from here on it may reach the server
                if not _send_one(smtp, email, recipient, owner, retry_base, result):
                    stop = True
                    break
            if stop:
                break
    finally:
        smtp.close()
        _unmark_sending(unsent, owner)
        _release(campaign.pk, owner)
    if result.sent:
        Campaign.objects.filter(pk=campaign.pk, failed_batches__gt=0).update(failed_batches=0)
    elif result.server_error and _server_failure(campaign.pk, result.server_error):
        result.stopped = True
    return result


def _send_one(smtp, email, recipient: Recipient, owner: str, retry_base: int, result) -> bool:
    """One SMTP transaction and its record; False when the server refuses us as a sender (the
    batch stops)."""
    try:
        smtp.send_messages([email])
    except (OSError, *_REFUSED) as error:  # SMTPException, timeouts: OSErrors
        smtp.close()  # a fresh connection for the next one
        attempts = recipient.attempts + 1
        if _refuses_us(error):
            # Not the recipient's fault: back to waiting, the attempt not counted.
            _record(
                recipient,
                owner,
                status=RecipientStatus.PENDING,
                attempts=recipient.attempts,
                last_error=str(error)[:300],
                claimed_by="",
                claim_expires_at=None,
            )
            result.server_error = f"{type(error).__name__}: {error}"[:200]
            return False
        if _is_permanent(error) or attempts >= MAX_ATTEMPTS:
            _record(
                recipient,
                owner,
                status=RecipientStatus.FAILED,
                last_error=str(error)[:300],
                claimed_by="",
            )
            result.failed += 1
        else:
            _record(
                recipient,
                owner,
                status=RecipientStatus.PENDING,
                next_attempt_at=timezone.now() + retry_delay(attempts, retry_base),
                last_error=str(error)[:300],
                claimed_by="",
                claim_expires_at=None,
            )
            result.retried += 1
        return True
    _record_sent(recipient, owner)
    result.sent += 1
    return True


def campaign_send(*, campaign_id: int, owner: str) -> str:
    """What one task run does: claim and send batches until the campaign is done, paused, or
    the time slice is over. Returns "done", "stopped", "later" (retries not due yet),
    "idle" (an automation with nothing due now) or "continue" (time slice over)."""
    from .services import campaign_finish

    started = time.monotonic()
    options = CampaignSettings.load()
    rate = send_rate(options.messages_per_second, options.messages_per_hour)
    eager = current_app.conf.task_always_eager
    while True:
        campaign = Campaign.objects.select_related("message").get(pk=campaign_id)
        if campaign.status != CampaignStatus.SENDING:
            _release(campaign_id, owner)
            return "stopped"
        batch = recipients_claim(campaign_id=campaign_id, owner=owner, size=options.batch_size)
        if batch:
            result = batch_send(campaign=campaign, recipients=batch, owner=owner, rate=rate)
            if result.stopped:
                return "stopped"
            if result.server_error or result.wait:
                # The server refused us, or the hour's budget is spent: try again later.
                if not eager:
                    return "later"
                time.sleep(min(result.wait or _server_backoff(campaign_id), 5.0))
                continue
        elif campaign.kind == CampaignKind.AUTOMATION:
            # Nothing due now: an automation waits for its next occurrence or delayed row (the
            # scheduler wakes it, docs/campaigns.md "Automations"); it never finishes.
            return "idle"
        else:
            waiting = Recipient.objects.filter(
                campaign_id=campaign_id,
                status__in=[
                    RecipientStatus.PENDING,
                    RecipientStatus.CLAIMED,
                    RecipientStatus.SENDING,
                ],
            )
            if not waiting.exists():
                campaign_finish(campaign=campaign)
                return "done"
            if not eager:
                return "later"
            time.sleep(0.2)  # in-process (embedded) mode: wait for the retries here
        if not eager and time.monotonic() - started > TIME_SLICE_SECONDS:
            return "continue"


def _next_moments(campaign_id: int) -> list[dt.datetime]:
    """When something of the campaign may next be claimed (a retry or a lease ending)."""
    rows = Recipient.objects.filter(campaign_id=campaign_id)
    times = [
        rows.filter(status=RecipientStatus.PENDING, next_attempt_at__isnull=False)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first(),
        rows.filter(status__in=[RecipientStatus.CLAIMED, RecipientStatus.SENDING])
        .order_by("claim_expires_at")
        .values_list("claim_expires_at", flat=True)
        .first(),
    ]
    return [moment for moment in times if moment is not None]


def _server_backoff(campaign_id: int) -> float:
    """After a batch the server refused: retry_backoff_seconds x 2^(n-1) for the n-th in a row."""
    failures = (
        Campaign.objects.filter(pk=campaign_id).values_list("failed_batches", flat=True).first()
    )
    if not failures:
        return 0.0
    return retry_delay(failures, CampaignSettings.load().retry_backoff_seconds).total_seconds()


def next_run_in(campaign_id: int) -> float:
    """Seconds until something of the campaign may be claimed (a retry or a lease ending), or
    the server may be tried again, or the hour's send budget renews."""
    held_back = max(_server_backoff(campaign_id), hourly_budget_wait())
    if held_back:
        return max(1.0, held_back)
    now = timezone.now()
    due = _next_moments(campaign_id)
    if not due:
        return 1.0
    return max(1.0, min((moment - now).total_seconds() for moment in due) + 0.5)


# An automation with nothing due is looked at again after at most this long (the scheduler's
# tick kicks its campaign once `dispatch_until` has passed): a delayed message goes out within
# this of its time even when it was recorded while a send task was finishing.
AUTOMATION_WAKE = dt.timedelta(minutes=5)


def automation_wake_at(campaign_id: int) -> dt.datetime:
    """When the scheduler should give an idle automation's campaign a send task again."""
    return min([timezone.now() + AUTOMATION_WAKE, *_next_moments(campaign_id)])
