from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty program")

    def ready(self) -> None:
        from django.core.checks import Tags, register
        from django.db.models.signals import post_migrate

        from .checks import deploy_settings_check

        register(Tags.security, deploy=True)(deploy_settings_check)

        from members import emails, participation

        from .models import ProgramSettings
        from .roles import sync_after_migrate

        def conditions() -> participation.ParticipationConditions:
            program = ProgramSettings.load()
            return participation.ParticipationConditions(
                minimum_age=program.minimum_age,
                excluded_domains=frozenset(program.excluded_domain_list),
            )

        participation.register_provider(conditions)
        post_migrate.connect(sync_after_migrate, dispatch_uid="loyalty.roles.sync")
        emails.register_context_provider(lambda: {"program": ProgramSettings.load()})

        from members import privacy as member_privacy

        from . import privacy

        member_privacy.register_exporter("points", privacy.export_points)
        member_privacy.register_exporter("purchases", privacy.export_purchases)
        member_privacy.register_exporter("tier_changes", privacy.export_tier_changes)
        member_privacy.register_owned_objects(privacy.owned_objects)
