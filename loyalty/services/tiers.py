"""Tiers: the rolling 12-month figure, upgrades on the purchase that qualifies, downgrades in
the nightly run after the grace period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from .. import events, rawsql
from ..earning import earning_terms
from ..models import (
    EntryKind,
    EntrySource,
    LedgerEntry,
    PointsAccount,
    ProgramSettings,
    Purchase,
    Tier,
    TierBasis,
    TierChange,
)

# What counts towards the rolling figure on the points basis.
TIER_POINT_KINDS = (EntryKind.EARN, EntryKind.BONUS, EntryKind.REVERSAL)
TIER_POINT_SOURCES = (EntrySource.PURCHASE, EntrySource.REFUND, EntrySource.CAMPAIGN)


def rolling_figures(
    *,
    member_ids: Iterable[int] | None,
    at: dt.datetime,
    basis: str,
    member_id_range: tuple[int, int] | None = None,
) -> dict[int, Decimal]:
    """The rolling 12-month spend (net of refunds) or points earned of these members (None:
    everyone; `member_id_range`: the members with ids from, to, both included), by member id,
    in one grouped query; members without any are left out."""
    since = at - relativedelta(months=12)
    rows: Iterable[tuple[int, Any]]
    if member_ids is not None and member_id_range is None and connection.vendor == "postgresql":
        rows = _rolling_figures_of(list(member_ids), since=since, at=at, basis=basis)
    elif basis == TierBasis.POINTS:
        entries = LedgerEntry.objects.filter(
            created_at__gt=since,
            created_at__lte=at,
            kind__in=TIER_POINT_KINDS,
            source__in=TIER_POINT_SOURCES,
        )
        if member_ids is not None:
            entries = entries.filter(account__member_id__in=list(member_ids))
        if member_id_range is not None:
            entries = entries.filter(
                account__member_id__gte=member_id_range[0],
                account__member_id__lte=member_id_range[1],
            )
        rows = (
            entries.values("account__member_id")
            .annotate(total=Sum("points"))
            .values_list("account__member_id", "total")
        )
    else:
        purchases = Purchase.objects.filter(purchased_at__gt=since, purchased_at__lte=at)
        if member_ids is not None:
            purchases = purchases.filter(member_id__in=list(member_ids))
        if member_id_range is not None:
            purchases = purchases.filter(
                member_id__gte=member_id_range[0], member_id__lte=member_id_range[1]
            )
        rows = (
            purchases.values("member_id")
            .annotate(total=Sum(F("amount") - F("refunded_amount")))
            .values_list("member_id", "total")
        )
    return {member_id: Decimal(total or 0) for member_id, total in rows}


def _rolling_figures_of(
    member_ids: list[int], *, since: dt.datetime, at: dt.datetime, basis: str
) -> list[tuple[int, Any]]:
    """`rolling_figures` of a few members (every purchase asks) as SQL text on PostgreSQL: the
    same filters as the ORM's query, without its compiler (loyalty/rawsql.py)."""
    purchase, entry, account = (rawsql.table(m) for m in (Purchase, LedgerEntry, PointsAccount))
    with rawsql.cursor() as cursor:
        if basis == TierBasis.POINTS:
            cursor.execute(
                f"SELECT a.member_id, SUM(e.points) FROM {entry} e "
                f"JOIN {account} a ON a.id = e.account_id "
                "WHERE e.created_at > %s AND e.created_at <= %s AND e.kind = ANY(%s::text[]) "
                "AND e.source = ANY(%s::text[]) AND a.member_id = ANY(%s::bigint[]) "
                "GROUP BY a.member_id",
                [
                    since,
                    at,
                    [k.value for k in TIER_POINT_KINDS],
                    [s.value for s in TIER_POINT_SOURCES],
                    member_ids,
                ],
            )
        else:
            cursor.execute(
                f"SELECT member_id, SUM(amount - refunded_amount) FROM {purchase} "
                "WHERE purchased_at > %s AND purchased_at <= %s AND member_id = ANY(%s::bigint[]) "
                "GROUP BY member_id",
                [since, at, member_ids],
            )
        return cursor.fetchall()


def rolling_figure(
    *, account: PointsAccount, at: dt.datetime | None = None, basis: str | None = None
) -> Decimal:
    """The member's rolling 12-month spend (net of refunds) or points earned."""
    figures = rolling_figures(
        member_ids=[account.member_id],
        at=at or timezone.now(),
        basis=basis or ProgramSettings.load().tier_basis,
    )
    return figures.get(account.member_id, Decimal(0))


def qualifying_tier(figure: Decimal, tiers: Sequence[Tier] | None = None) -> Tier | None:
    tiers = earning_terms().tiers if tiers is None else tiers
    reached = [tier for tier in tiers if tier.threshold <= figure]
    return max(reached, key=lambda tier: tier.rank) if reached else None


def tier_recalculate(
    *,
    account: PointsAccount,
    allow_downgrade: bool,
    now: dt.datetime | None = None,
    tiers: Sequence[Tier] | None = None,
    program: ProgramSettings | None = None,
) -> TierChange | None:
    """Move a (locked) account to the tier its rolling figure qualifies for.

    Upgrades happen at once (on every purchase). Downgrades happen only in the nightly run
    (`allow_downgrade`) and only after the reached tier's grace period has passed; then the
    member drops to the tier the figure qualifies for, possibly several levels.
    """
    now = now or timezone.now()
    program = program or ProgramSettings.load()
    figure = rolling_figure(account=account, at=now, basis=program.tier_basis)
    target = qualifying_tier(figure, tiers)
    current = account.tier
    current_rank = current.rank if current else -1
    target_rank = target.rank if target else -1
    if target_rank > current_rank:
        reason = "upgrade"
    elif (
        target_rank < current_rank
        and allow_downgrade
        and (account.tier_kept_until is None or account.tier_kept_until <= now)
    ):
        reason = "downgrade"
    else:
        return None
    change = _tier_move(
        account=account, target=target, figure=figure, reason=reason, now=now, program=program
    )
    PointsAccount.objects.filter(pk=account.pk).update(
        tier=target, tier_since=now, tier_kept_until=account.tier_kept_until
    )
    change.save()
    tier_change_told(change)
    return change


# The TierChange reason of the tier a member starts on.
ENROLMENT = "enrolment"


def base_tier(tiers: Sequence[Tier] | None = None) -> Tier | None:
    """The tier every member is on from enrolment: the one a figure of 0 reaches (the lowest
    tier when its threshold is 0), or None when no tier starts at 0 (or there are none)."""
    return qualifying_tier(Decimal(0), tiers)


def base_tier_assign(
    *, accounts: Collection[PointsAccount], now: dt.datetime | None = None
) -> list[TierChange]:
    """Put new (locked) accounts without a tier on the base tier, each with a TierChange
    "enrolment" and its event, so that a member has a level from the first page on rather
    than from the nightly run. Two statements whatever the number of accounts."""
    without = [account for account in accounts if account.tier_id is None]
    tier = base_tier() if without else None
    if tier is None:
        return []
    now = now or timezone.now()
    PointsAccount.objects.filter(pk__in=[account.pk for account in without]).update(
        tier=tier, tier_since=now
    )
    changes = TierChange.objects.bulk_create(
        [
            TierChange(
                account=account,
                from_tier=None,
                to_tier=tier,
                figure=Decimal(0),
                reason=ENROLMENT,
                changed_at=now,
            )
            for account in without
        ]
    )
    for account, change in zip(without, changes, strict=True):
        account.tier = tier
        account.tier_since = now
        tier_change_told(change)
    return changes


def account_open_on_enrolment(event: events.DomainEvent) -> None:
    """Subscriber of "member.enrolled": the new member's account, on the base tier, in the
    enrolment's transaction (every enrolment path goes through members' `member_enrol`)."""
    from .ledger import accounts_lock

    if event.member_id is not None:
        accounts_lock(member_ids={event.member_id})


def tier_upgrade(
    *,
    account: PointsAccount,
    figure: Decimal,
    tiers: Sequence[Tier],
    now: dt.datetime,
    program: ProgramSettings,
) -> TierChange | None:
    """The upgrade a purchase brings a (locked) account whose figure is now `figure`, applied to
    the account in memory: the caller saves both (purchases write them in bulk)."""
    target = qualifying_tier(figure, tiers)
    current_rank = account.tier.rank if account.tier else -1
    if target is None or target.rank <= current_rank:
        return None
    return _tier_move(
        account=account, target=target, figure=figure, reason="upgrade", now=now, program=program
    )


def _tier_move(
    *,
    account: PointsAccount,
    target: Tier | None,
    figure: Decimal,
    reason: str,
    now: dt.datetime,
    program: ProgramSettings,
) -> TierChange:
    """Move the account to `target` in memory; the change, not saved yet."""
    change = TierChange(
        account=account,
        from_tier=account.tier,
        to_tier=target,
        figure=figure,
        reason=reason,
        changed_at=now,
    )
    account.tier = target
    account.tier_since = now
    account.tier_kept_until = now + relativedelta(months=program.tier_grace_months)
    return change


def tier_change_told(change: TierChange) -> None:
    """The domain event of a saved tier change (in its transaction)."""
    events.emit(
        "tier.changed",
        member_id=change.account.member_id,
        from_tier=change.from_tier.name if change.from_tier else None,
        to_tier=change.to_tier.name if change.to_tier else None,
        reason=change.reason,
        figure=str(change.figure),
        tier_change_id=change.pk,
    )


def tiers_recalculate_all(*, now: dt.datetime | None = None, batch: int = 10_000) -> int:
    """The nightly run; returns the number of tier changes.

    The accounts are read `batch` at a time in member order (keyset), with one grouped query
    per batch for the rolling figures of its range of members, so the run's memory does not
    grow with the number of members; only the accounts whose tier should move are then
    locked and changed, each in its own short transaction (the change is re-checked under
    the lock, so a purchase in between is respected).
    """
    now = now or timezone.now()
    program = ProgramSettings.load()
    tiers = earning_terms().tiers
    changes = 0
    accounts = PointsAccount.objects.order_by("member_id").values_list(
        "pk", "member_id", "tier__rank", "tier_kept_until"
    )
    after = 0
    while True:
        rows = list(accounts.filter(member_id__gt=after)[:batch])
        if not rows:
            return changes
        after = rows[-1][1]
        figures = rolling_figures(
            member_ids=None,
            at=now,
            basis=program.tier_basis,
            member_id_range=(rows[0][1], after),
        )
        changes += _tiers_move(rows, figures=figures, tiers=tiers, now=now)


def _tiers_move(
    rows: Sequence[tuple[int, int, int | None, dt.datetime | None]],
    *,
    figures: dict[int, Decimal],
    tiers: Sequence[Tier],
    now: dt.datetime,
) -> int:
    """tiers_recalculate_all's changes for one batch of accounts; returns their number."""
    changes = 0
    for account_id, member_id, rank, kept_until in rows:
        target = qualifying_tier(Decimal(figures.get(member_id) or 0), tiers)
        target_rank = target.rank if target else -1
        current_rank = rank if rank is not None else -1
        if target_rank == current_rank or (
            target_rank < current_rank and kept_until is not None and kept_until > now
        ):
            continue
        with transaction.atomic():
            # of=("self",): lock the account only; its tier may be NULL (an outer join).
            account = (
                PointsAccount.objects.select_for_update(of=("self",))
                .select_related("tier")
                .get(pk=account_id)
            )
            if tier_recalculate(account=account, allow_downgrade=True, now=now, tiers=tiers):
                changes += 1
    return changes
