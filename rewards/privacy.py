"""Rewards' part of a member's GDPR export and erasure (registered in RewardsConfig.ready)."""

from __future__ import annotations

from .models import Redemption, RedemptionStatus


def export_redemptions(member) -> list[dict]:
    redemptions = list(
        Redemption.objects.filter(member=member)
        .order_by("created_at", "pk")
        .values(
            "reward__name_en",
            "reward__name_nl",
            "points",
            "status",
            "code",
            "created_at",
            "valid_until",
            "changed_at",
            "changed_by_id",
            "refund_entry__points",
        )
    )
    for redemption in redemptions:
        # Who changed the status: the member, or staff (whose name is not the member's).
        changed_by = redemption.pop("changed_by_id")
        if changed_by is not None:
            changed_by = "member" if changed_by == member.user_id else "staff"
        redemption["status_changed_at"] = redemption.pop("changed_at")
        redemption["status_changed_by"] = changed_by
        cancelled = redemption["status"] == RedemptionStatus.CANCELLED
        redemption["cancelled_at"] = redemption["status_changed_at"] if cancelled else None
        redemption["points_returned"] = redemption.pop("refund_entry__points") or 0
    return redemptions


def owned_redemptions(member) -> list:
    return [Redemption.objects.filter(member=member)]
