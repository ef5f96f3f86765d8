"""The nightly check that every cached balance equals its ledger and its open lots."""

from __future__ import annotations

import logging

from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from ..models import (
    ConsistencyCheck,
    PointsAccount,
)

logger = logging.getLogger(__name__)


def ledger_consistency_check() -> ConsistencyCheck:
    """Compare every cached balance with its ledger sum and its open lots; change nothing.

    Two grouped queries over the whole table; differences are stored and logged as errors
    for the admin to see, never corrected silently.
    """
    ledger_mismatches = (
        PointsAccount.objects.annotate(ledger_sum=Coalesce(Sum("entries__points"), 0))
        .exclude(balance=F("ledger_sum"))
        .values("pk", "member_id", "balance", "ledger_sum")
    )
    lot_mismatches = (
        PointsAccount.objects.annotate(lots_sum=Coalesce(Sum("entries__remaining_points"), 0))
        .exclude(balance=F("lots_sum"))
        .values("pk", "member_id", "balance", "lots_sum")
    )
    mismatches = [
        {
            "account": row["pk"],
            "member": row["member_id"],
            "balance": row["balance"],
            "ledger_sum": row["ledger_sum"],
            "kind": "ledger",
        }
        for row in ledger_mismatches
    ] + [
        {
            "account": row["pk"],
            "member": row["member_id"],
            "balance": row["balance"],
            "lots_sum": row["lots_sum"],
            "kind": "lots",
        }
        for row in lot_mismatches
    ]
    check = ConsistencyCheck.objects.create(
        accounts_checked=PointsAccount.objects.count(), mismatches=mismatches
    )
    if mismatches:
        logger.error(
            "ledger consistency check found %d mismatches",
            len(mismatches),
            extra={"check": check.pk},
        )
    return check
