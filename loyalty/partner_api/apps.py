from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnerApiConfig(AppConfig):
    name = "loyalty.partner_api"
    label = "partner_api"
    verbose_name = _("Partner API")

    def ready(self) -> None:

        from loyalty import process_cache

        from . import schema  # noqa: F401  (registers the API key's OpenAPI description)
        from .models import PartnerAPIKey

        # The keys and their partners are kept in each process's memory (access.py).
        process_cache.reload_on_changes_of(PartnerAPIKey, "loyalty.Partner", uid="partner_api.keys")
