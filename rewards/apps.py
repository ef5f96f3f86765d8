from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards")

    def ready(self) -> None:
        from django.contrib import admin as django_admin

        from members import privacy

        django_admin.site.register_index_link(
            url_name="rewards_performance",
            title=_("Reward performance"),
            description=_("redemptions, points spent and cost per month and partner"),
            permission="rewards.view_redemption",
        )

        from . import privacy as rewards_privacy

        privacy.register_exporter("rewards", rewards_privacy.export_redemptions)
        privacy.register_owned_objects(rewards_privacy.owned_redemptions)
