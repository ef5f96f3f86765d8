from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        from loyalty.earning import register_bonus_provider

        from .bonus import campaign_bonuses, live_bonuses_forget
        from .models import Campaign

        register_bonus_provider(campaign_bonuses)
        for signal in (post_save, post_delete):
            signal.connect(
                live_bonuses_forget,
                sender=Campaign,
                dispatch_uid=f"campaigns.live_bonuses.{signal is post_save}",
            )

        from .automations import subscribe

        subscribe()

        from anymail.signals import tracking

        from .esp_events import tracking_received

        tracking.connect(tracking_received, dispatch_uid="campaigns.esp_events")

        from members import privacy

        from . import privacy as campaign_privacy

        privacy.register_exporter("campaign_messages", campaign_privacy.export_messages)
        privacy.register_eraser(campaign_privacy.erase_recipients)
        privacy.register_owned_objects(campaign_privacy.owned_recipients)
