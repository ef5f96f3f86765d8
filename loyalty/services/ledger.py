"""The points ledger: every change of points is an entry appended under the account's lock.

Every change goes through `_credit` or `_debit`, which run with the member's PointsAccount row
locked, append the entry (and tell its domain event) and update the cached balance in the same
transaction. Lock order everywhere: purchase row, then account row, then lots.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from members.models import Member, User
from members.selectors import members_with_birthday

from .. import events, rawsql
from ..audit.models import AuditAction
from ..audit.services import audit_record, change
from ..earning import earning_terms
from ..errors import (
    InsufficientPoints,
    InvalidPoints,
    ReasonRequired,
    checked_text,
)
from ..formats import points_text
from ..models import (
    BirthdayCredit,
    EntryKind,
    EntrySource,
    LedgerEntry,
    PointsAccount,
    ProgramSettings,
    Purchase,
    Refund,
)
from ..reasons import BIRTHDAY, POINTS_EXPIRED, Reason
from .tiers import base_tier_assign

logger = logging.getLogger(__name__)

# Points, balances and points_earned are IntegerFields: 32 bits on PostgreSQL.
POINTS_MAX = BaseDatabaseOperations.integer_field_ranges["IntegerField"][1]


def _checked_text(reason: str) -> str:
    """A reason typed by someone: required, stripped, and within the column."""
    if not isinstance(reason, str) or not reason.strip():
        raise ReasonRequired()
    return checked_text(reason, model=LedgerEntry, name="reason")


def _checked_reason(reason: str | Reason) -> str | Reason:
    """A ledger reason: a Reason the system names, or checked text."""
    return reason if isinstance(reason, Reason) else _checked_text(reason)


def reason_fields(reason: str | Reason) -> dict[str, object]:
    """The entry's reason columns: a Reason as its key and parameters (read in the reader's
    language) with its text in the default language; text as typed, without a key."""
    if isinstance(reason, Reason):
        return {
            "reason": checked_text(reason.stored_text(), model=LedgerEntry, name="reason"),
            "reason_key": reason.key,
            "reason_params": dict(reason.params) or None,
        }
    return {"reason": reason, "reason_key": "", "reason_params": None}


def account_lock(*, member: Member) -> PointsAccount:
    """The member's account row, locked for this transaction (created on first use)."""
    return accounts_lock(member_ids={member.pk})[member.pk]


def accounts_lock(
    *, member_ids: Collection[int], now: dt.datetime | None = None
) -> dict[int, PointsAccount]:
    """These members' account rows with their tiers, by member id, locked for this transaction
    in the order of their ids (two callers locking overlapping sets cannot deadlock); the
    missing ones are created first, on the base tier as of `now` (the caller's clock, so that
    its own tier changes come after the enrolment's). The tiers are the earning terms' (kept
    in memory), not read with the accounts."""
    terms = earning_terms()

    def locked(ids: Collection[int]) -> dict[int, PointsAccount]:
        # Every purchase locks: SQL text, not the ORM's compiler (loyalty/rawsql.py).
        quote = connection.ops.quote_name
        with rawsql.cursor() as cursor:
            cursor.execute(
                f"SELECT {rawsql.select_list(PointsAccount)} FROM {rawsql.table(PointsAccount)} "
                f"WHERE {quote('member_id')} IN ({', '.join(['%s'] * len(ids))}) "
                f"ORDER BY {quote('id')}"
                + (" FOR UPDATE" if connection.features.has_select_for_update else ""),
                list(ids),
            )
            accounts = rawsql.instances(PointsAccount, cursor.fetchall())
        for account in accounts:
            tier = terms.tier(account.tier_id)
            if tier is not None:  # else read when asked (a tier newer than the terms)
                account.tier = tier
        return {account.member_id: account for account in accounts}

    accounts = locked(member_ids)
    missing = set(member_ids) - accounts.keys()
    if missing:
        # Created concurrently by someone else: that insert waits for them, then is skipped.
        PointsAccount.objects.bulk_create(
            [PointsAccount(member_id=member_id) for member_id in sorted(missing)],
            ignore_conflicts=True,
        )
        created = locked(missing)
        # A new account starts on the base tier (threshold 0), not without one.
        base_tier_assign(accounts=list(created.values()), now=now)
        accounts.update(created)
    return accounts


def _expiry_for(at: dt.datetime, program: ProgramSettings) -> dt.datetime | None:
    if not program.points_expiry_months:
        return None
    return at + relativedelta(months=program.points_expiry_months)


def _ensure_points_fit(account: PointsAccount, points: int) -> None:
    """Refuse a credit the integer columns cannot hold (rather than a database error)."""
    if points > POINTS_MAX or account.balance + points > POINTS_MAX:
        raise InvalidPoints(
            _("An account can hold at most %(max)s points.") % {"max": points_text(POINTS_MAX)},
            max=POINTS_MAX,
        )


def _credit(
    *,
    account: PointsAccount,
    points: int,
    kind: str,
    reason: str | Reason,
    source: str,
    purchase: Purchase | None = None,
    refund: Refund | None = None,
    created_by: User | None = None,
    at: dt.datetime | None = None,
    program: ProgramSettings | None = None,
) -> LedgerEntry:
    at = at or timezone.now()
    _ensure_points_fit(account, points)
    account.balance += points
    PointsAccount.objects.filter(pk=account.pk).update(
        balance=F("balance") + points, updated_at=timezone.now()
    )
    entry = LedgerEntry.objects.create(
        account=account,
        kind=kind,
        points=points,
        balance_after=account.balance,
        **reason_fields(reason),
        source=source,
        purchase=purchase,
        refund=refund,
        created_by=created_by,
        created_at=at,
        expires_at=_expiry_for(at, program or ProgramSettings.load()),
        remaining_points=points,
    )
    return _told(entry, member_id=account.member_id)


_EVENT_OF_KIND = {
    EntryKind.EARN: "points.earned",
    EntryKind.BONUS: "points.earned",
    EntryKind.REDEEM: "points.redeemed",
    EntryKind.EXPIRE: "points.expired",
    EntryKind.ADJUST: "points.adjusted",
    EntryKind.REVERSAL: "points.reversed",
}


def _told(entry: LedgerEntry, *, member_id: int) -> LedgerEntry:
    """Emit the domain event of a new ledger entry (in its transaction)."""
    events.emit(
        _EVENT_OF_KIND[EntryKind(entry.kind)],
        member_id=member_id,
        entry_id=entry.pk,
        kind=entry.kind,
        points=entry.points,
        balance=entry.balance_after,
        source=entry.source,
        purchase_id=entry.purchase_id,
    )
    return entry


def _expire_due_lots(*, account: PointsAccount, now: dt.datetime) -> LedgerEntry | None:
    lots = list(
        LedgerEntry.objects.select_for_update()
        .filter(account=account, remaining_points__gt=0, expires_at__lte=now)
        .order_by("pk")
    )
    expired = sum(lot.remaining_points for lot in lots)
    if not expired:
        return None
    LedgerEntry.objects.filter(pk__in=[lot.pk for lot in lots]).update(
        expired_points=F("expired_points") + F("remaining_points"), remaining_points=0
    )
    account.balance -= expired
    PointsAccount.objects.filter(pk=account.pk).update(
        balance=F("balance") - expired, updated_at=timezone.now()
    )
    entry = LedgerEntry.objects.create(
        account=account,
        kind=EntryKind.EXPIRE,
        points=-expired,
        balance_after=account.balance,
        **reason_fields(Reason(POINTS_EXPIRED)),
        source=EntrySource.SYSTEM,
        created_at=now,
    )
    return _told(entry, member_id=account.member_id)


def _debit(
    *,
    account: PointsAccount,
    points: int,
    kind: str,
    reason: str | Reason,
    source: str,
    purchase: Purchase | None = None,
    refund: Refund | None = None,
    created_by: User | None = None,
    prefer_lot: LedgerEntry | None = None,
) -> LedgerEntry:
    """Take points from the oldest lots first (a preferred lot before them), never below 0."""
    now = timezone.now()
    _expire_due_lots(account=account, now=now)  # expired points cannot be spent
    if points > account.balance:
        raise InsufficientPoints(
            _("%(needed)s points needed, %(balance)s available.")
            % {"needed": points_text(points), "balance": points_text(account.balance)},
            needed=points,
            balance=account.balance,
        )
    lots = list(
        LedgerEntry.objects.select_for_update()
        .filter(account=account, remaining_points__gt=0)
        .order_by(F("expires_at").asc(nulls_last=True), "created_at", "pk")
    )
    if prefer_lot is not None:
        lots.sort(key=lambda lot: lot.pk != prefer_lot.pk)  # stable: the rest stay FIFO
    left = points
    changed = []
    for lot in lots:
        if not left:
            break
        take = min(left, lot.remaining_points)
        lot.remaining_points -= take
        left -= take
        changed.append(lot)
    if left:  # the lots disagree with the cached balance: refuse rather than corrupt
        raise InsufficientPoints(_("The points lots do not cover this debit."))
    LedgerEntry.objects.bulk_update(changed, ["remaining_points"])
    account.balance -= points
    PointsAccount.objects.filter(pk=account.pk).update(
        balance=F("balance") - points, updated_at=now
    )
    entry = LedgerEntry.objects.create(
        account=account,
        kind=kind,
        points=-points,
        balance_after=account.balance,
        **reason_fields(reason),
        source=source,
        purchase=purchase,
        refund=refund,
        created_by=created_by,
        created_at=now,
    )
    return _told(entry, member_id=account.member_id)


def _whole_points(points: int) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidPoints()
    return points


@transaction.atomic
def points_credit(
    *,
    member: Member,
    points: int,
    kind: str = EntryKind.BONUS,
    reason: str | Reason,
    source: str = EntrySource.SYSTEM,
    created_by: User | None = None,
) -> LedgerEntry:
    """Add points (bonus, campaign, refund of a cancelled redemption) as a new lot."""
    if _whole_points(points) < 0:
        raise InvalidPoints(_("Use points_debit to take points away."))
    reason = _checked_reason(reason)
    account = account_lock(member=member)
    return _credit(
        account=account,
        points=points,
        kind=kind,
        reason=reason,
        source=source,
        created_by=created_by,
    )


@transaction.atomic
def points_debit(
    *,
    member: Member,
    points: int,
    kind: str = EntryKind.REDEEM,
    reason: str | Reason,
    source: str = EntrySource.REDEMPTION,
    created_by: User | None = None,
) -> LedgerEntry:
    """Take points away, oldest lots first, or raise InsufficientPoints and change nothing."""
    if _whole_points(points) < 0:
        raise InvalidPoints(_("Debit a positive number of points."))
    reason = _checked_reason(reason)
    account = account_lock(member=member)
    return _debit(
        account=account,
        points=points,
        kind=kind,
        reason=reason,
        source=source,
        created_by=created_by,
    )


@transaction.atomic
def points_adjust(*, member: Member, points: int, reason: str, staff_user: User) -> LedgerEntry:
    """A staff correction with a mandatory reason; audited by the entry's `created_by`."""
    _whole_points(points)
    reason = _checked_text(reason)
    account = account_lock(member=member)
    if points > 0:
        entry = _credit(
            account=account,
            points=points,
            kind=EntryKind.ADJUST,
            reason=reason,
            source=EntrySource.STAFF,
            created_by=staff_user,
        )
    else:
        entry = _debit(
            account=account,
            points=-points,
            kind=EntryKind.ADJUST,
            reason=reason,
            source=EntrySource.STAFF,
            created_by=staff_user,
        )
    audit_record(
        actor=staff_user,
        action=AuditAction.POINTS_ADJUSTED,
        obj=member,
        object_repr=member.member_number,  # not the name: the log outlives an erasure
        description=gettext_noop("Points of member %(member)s adjusted by %(points)+d"),
        params={"member": member.member_number, "points": points},
        changes={"balance": change(entry.balance_after - entry.points, entry.balance_after)},
        reason=reason,
    )
    logger.info(
        "points adjusted",
        extra={"member": member.pk, "points": points, "staff_user": staff_user.pk},
    )
    return entry


def points_expire(*, now: dt.datetime | None = None, batch: int = 1000) -> int:
    """Expire what remains of every lot past its expiry date; returns the points expired.

    One short transaction per account, so the nightly run never holds many locks; running it
    twice expires nothing more. The accounts with due lots are read `batch` at a time in
    account order (keyset), so the run's memory does not grow with the number of accounts.
    """
    now = now or timezone.now()
    due = LedgerEntry.objects.filter(remaining_points__gt=0, expires_at__lte=now)
    total = 0
    after = 0
    while True:
        account_ids = list(
            due.filter(account_id__gt=after)
            .values_list("account_id", flat=True)
            .distinct()
            .order_by("account_id")[:batch]
        )
        for account_id in account_ids:
            with transaction.atomic():
                account = PointsAccount.objects.select_for_update().get(pk=account_id)
                entry = _expire_due_lots(account=account, now=now)
                total += -entry.points if entry else 0
        if len(account_ids) < batch:
            return total
        after = account_ids[-1]


@transaction.atomic
def birthday_points_credit(*, member_id: int, points: int, year: int) -> LedgerEntry | None:
    """The member's birthday points for `year`, at most once: under the account's lock a
    second caller (the daily task run twice at once) finds the first's credit and adds nothing;
    the unique (member, year) key of BirthdayCredit stands behind it. None if already given."""
    if _whole_points(points) < 0:
        raise InvalidPoints()
    account = accounts_lock(member_ids={member_id})[member_id]
    if BirthdayCredit.objects.filter(member_id=member_id, year=year).exists():
        return None
    entry = _credit(
        account=account,
        points=points,
        kind=EntryKind.BONUS,
        reason=Reason(BIRTHDAY),
        source=EntrySource.SYSTEM,
    )
    BirthdayCredit.objects.create(member_id=member_id, year=year, entry=entry)
    return entry


def birthday_points_credit_all(*, on: dt.date, points: int) -> int:
    """Birthday points for every active member whose birthday is `on` and who has none for
    that year yet (one set-based query finds them; each credit is its own short transaction).
    Returns how many were credited; running it again credits nobody twice."""
    due = (
        members_with_birthday(on=on)
        .exclude(pk__in=BirthdayCredit.objects.filter(year=on.year).values("member_id"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    credited = 0
    for member_id in due.iterator(chunk_size=2000):
        if birthday_points_credit(member_id=member_id, points=points, year=on.year) is not None:
            credited += 1
    return credited
