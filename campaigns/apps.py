from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        from loyalty import process_cache
        from loyalty.earning import register_bonus_provider

        from .bonus import campaign_bonuses
        from .models import Automation, Campaign

        register_bonus_provider(campaign_bonuses)
        # The live bonus offers and which automation triggers are on are kept in each
        # process's memory (bonus.live_bonuses, selectors.automation_triggers_on).
        process_cache.reload_on_changes_of(Automation, Campaign, uid="campaigns.config")

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
