"""Loyalty's part of a member's GDPR export and erasure (registered in LoyaltyConfig.ready)."""

from __future__ import annotations

from .models import LedgerEntry, PointsAccount, Purchase, PurchaseLine, Refund, TierChange


def export_points(member) -> dict:
    account = PointsAccount.objects.filter(member=member).select_related("tier").first()
    return {
        "balance": account.balance if account else 0,
        "tier": account.tier.name if account and account.tier else None,
        "ledger": list(
            LedgerEntry.objects.filter(account__member=member)
            .order_by("created_at", "pk")
            .values(
                "created_at", "kind", "points", "balance_after", "reason", "source", "expires_at"
            )
        ),
    }


def export_purchases(member) -> list[dict]:
    purchases = list(
        Purchase.objects.filter(member=member)
        .order_by("purchased_at", "pk")
        .values(
            "pk",
            "partner__name",
            "external_id",
            "purchased_at",
            "amount",
            "refunded_amount",
            "channel",
            "store",
            "points_earned",
        )
    )
    lines: dict[int, list] = {}
    for line in PurchaseLine.objects.filter(purchase__member=member).values(
        "purchase_id", "product_code", "description", "category", "quantity", "amount"
    ):
        lines.setdefault(line.pop("purchase_id"), []).append(line)
    refunds: dict[int, list] = {}
    for refund in (
        Refund.objects.filter(purchase__member=member)
        .order_by("created_at", "pk")
        .values(
            "purchase_id",
            "pk",
            "external_id",
            "amount",
            "points_reversed",
            "points_expired",
            "points_not_recovered",
            "created_at",
        )
    ):
        refund["id"] = refund.pop("pk")
        refunds.setdefault(refund.pop("purchase_id"), []).append(refund)
    for purchase in purchases:
        pk = purchase.pop("pk")
        purchase["lines"] = lines.get(pk, [])
        purchase["refunds"] = refunds.get(pk, [])
    return purchases


def export_tier_changes(member) -> list[dict]:
    return [
        {
            "changed_at": change["changed_at"],
            "from_tier": change["from_tier__name"],
            "to_tier": change["to_tier__name"],
            "rolling_12_month_figure": change["figure"],
            "reason": change["reason"],
        }
        for change in TierChange.objects.filter(account__member=member)
        .order_by("changed_at", "pk")
        .values("changed_at", "from_tier__name", "to_tier__name", "figure", "reason")
    ]


def owned_objects(member) -> list:
    """The member's objects here, whose admin history erasure rewrites."""
    return [
        PointsAccount.objects.filter(member=member),
        Purchase.objects.filter(member=member),
        Refund.objects.filter(purchase__member=member),
        LedgerEntry.objects.filter(account__member=member),
        TierChange.objects.filter(account__member=member),
    ]
