from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnerApiConfig(AppConfig):
    name = "loyalty.partner_api"
    label = "partner_api"
    verbose_name = _("Partner API")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from loyalty import process_cache

        from . import schema  # noqa: F401  (registers the API key's OpenAPI description)
        from .models import PartnerAPIKey

        # The keys and their partners are kept in each process's memory (access.py).
        for sender in (PartnerAPIKey, "loyalty.Partner"):
            for signal in (post_save, post_delete):
                signal.connect(
                    process_cache.changed,
                    sender=sender,
                    dispatch_uid=f"partner_api.keys.{sender}.{signal is post_save}",
                )
