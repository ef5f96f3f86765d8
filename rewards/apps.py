from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards")

    def ready(self) -> None:
        from members import privacy

        def export_redemptions(member) -> list[dict]:
            from .models import Redemption

            return list(
                Redemption.objects.filter(member=member)
                .order_by("created_at", "pk")
                .values("reward__name_en", "points", "status", "code", "created_at", "valid_until")
            )

        privacy.register_exporter("rewards", export_redemptions)
