from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnerApiConfig(AppConfig):
    name = "loyalty.partner_api"
    label = "partner_api"
    verbose_name = _("Partner API")

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the API key's OpenAPI description)
