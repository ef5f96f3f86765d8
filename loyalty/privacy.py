"""Loyalty's part of a member's GDPR export (registered in LoyaltyConfig.ready)."""

from __future__ import annotations

from .models import LedgerEntry, PointsAccount, Purchase, PurchaseLine


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
    for purchase in purchases:
        purchase["lines"] = lines.get(purchase.pop("pk"), [])
    return purchases
