"""Tiers: the rolling 12-month figure, upgrades on the purchase that qualifies, downgrades in
the nightly run after the grace period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import events
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


def rolling_figure(
    *, account: PointsAccount, at: dt.datetime | None = None, basis: str | None = None
) -> Decimal:
    """The member's rolling 12-month spend (net of refunds) or points earned."""
    at = at or timezone.now()
    since = at - relativedelta(months=12)
    basis = basis or ProgramSettings.load().tier_basis
    if basis == TierBasis.POINTS:
        total = account.entries.filter(
            created_at__gt=since,
            created_at__lte=at,
            kind__in=[EntryKind.EARN, EntryKind.BONUS, EntryKind.REVERSAL],
            source__in=[EntrySource.PURCHASE, EntrySource.REFUND, EntrySource.CAMPAIGN],
        ).aggregate(total=Coalesce(Sum("points"), 0))["total"]
        return Decimal(total)
    return Purchase.objects.filter(
        member_id=account.member_id,
        purchased_at__gt=since,
        purchased_at__lte=at,
    ).aggregate(total=Coalesce(Sum(F("amount") - F("refunded_amount")), Decimal("0")))["total"]


def qualifying_tier(figure: Decimal, tiers: Sequence[Tier] | None = None) -> Tier | None:
    tiers = list(Tier.objects.order_by("rank")) if tiers is None else tiers
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
    account.tier = target
    account.tier_since = now
    account.tier_kept_until = now + relativedelta(months=program.tier_grace_months)
    PointsAccount.objects.filter(pk=account.pk).update(
        tier=target, tier_since=now, tier_kept_until=account.tier_kept_until
    )
    change = TierChange.objects.create(
        account=account,
        from_tier=current,
        to_tier=target,
        figure=figure,
        reason=reason,
        changed_at=now,
    )
    events.emit(
        "tier.changed",
        member_id=account.member_id,
        from_tier=current.name if current else None,
        to_tier=target.name if target else None,
        reason=reason,
        figure=str(figure),
    )
    return change


def tiers_recalculate_all(*, now: dt.datetime | None = None) -> int:
    """The nightly run; returns the number of tier changes.

    One grouped query finds every member's rolling figure; only the accounts whose tier
    should move are then locked and changed, each in its own short transaction (the change
    is re-checked under the lock, so a purchase in between is respected).
    """
    now = now or timezone.now()
    program = ProgramSettings.load()
    tiers = list(Tier.objects.order_by("rank"))
    since = now - relativedelta(months=12)
    if program.tier_basis == TierBasis.POINTS:
        figures = dict(
            LedgerEntry.objects.filter(
                created_at__gt=since,
                created_at__lte=now,
                kind__in=[EntryKind.EARN, EntryKind.BONUS, EntryKind.REVERSAL],
                source__in=[EntrySource.PURCHASE, EntrySource.REFUND, EntrySource.CAMPAIGN],
            )
            .values("account__member_id")
            .annotate(total=Sum("points"))
            .values_list("account__member_id", "total")
        )
    else:
        figures = dict(
            Purchase.objects.filter(purchased_at__gt=since, purchased_at__lte=now)
            .values("member_id")
            .annotate(total=Sum(F("amount") - F("refunded_amount")))
            .values_list("member_id", "total")
        )
    changes = 0
    accounts = PointsAccount.objects.order_by("pk").values_list(
        "pk", "member_id", "tier__rank", "tier_kept_until"
    )
    for account_id, member_id, rank, kept_until in accounts.iterator(chunk_size=10_000):
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
