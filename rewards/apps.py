from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards")

    def ready(self) -> None:
        from members import privacy

        def export_redemptions(member) -> list[dict]:
            from .models import Redemption, RedemptionStatus

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
            from .models import Redemption

            return [Redemption.objects.filter(member=member)]

        privacy.register_exporter("rewards", export_redemptions)
        privacy.register_owned_objects(owned_redemptions)
