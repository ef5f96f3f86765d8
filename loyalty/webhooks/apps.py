from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "loyalty.webhooks"
    label = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from loyalty import events

        from . import selectors, services
        from .models import WebhookEndpoint

        events.subscribe(
            events.ANY, services.on_domain_event, interested=selectors.anyone_subscribes
        )
        for signal in (post_save, post_delete):
            signal.connect(
                selectors.subscriptions_changed,
                sender=WebhookEndpoint,
                dispatch_uid=f"webhooks.subscriptions.{signal is post_save}",
            )
