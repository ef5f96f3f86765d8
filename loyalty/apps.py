from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class LoyaltyAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the project's site (loyalty/admin_site.py) as `admin.site`; named in
    INSTALLED_APPS instead of "django.contrib.admin"."""

    default = False  # `LoyaltyConfig` stays the loyalty app's config
    default_site = "loyalty.admin_site.LoyaltyAdminSite"


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty program")

    def ready(self) -> None:
        from django.core.checks import Tags, register
        from django.db.models.signals import post_migrate

        from .checks import deploy_settings_check

        register(Tags.security, deploy=True)(deploy_settings_check)

        from members import emails, participation

        from . import process_cache
        from .models import EarningRule, ProgramSettings, Tier
        from .roles import sync_after_migrate

        process_cache.reload_on_changes_of(Tier, EarningRule, uid="loyalty.earning_terms")

        def conditions() -> participation.ParticipationConditions:
            program = ProgramSettings.load()
            return participation.ParticipationConditions(
                minimum_age=program.minimum_age,
                excluded_domains=frozenset(program.excluded_domain_list),
            )

        participation.register_provider(conditions)

        from . import events
        from .services.tiers import account_open_on_enrolment

        # A member is on the base tier from enrolment, whichever path enrolled them.
        events.subscribe("member.enrolled", account_open_on_enrolment)
        post_migrate.connect(sync_after_migrate, dispatch_uid="loyalty.roles.sync")
        emails.register_context_provider(lambda: {"program": ProgramSettings.load()})

        from members import privacy as member_privacy

        from . import privacy

        member_privacy.register_exporter("points", privacy.export_points)
        member_privacy.register_exporter("purchases", privacy.export_purchases)
        member_privacy.register_exporter("tier_changes", privacy.export_tier_changes)
        member_privacy.register_owned_objects(privacy.owned_objects)

        self._register_admin_parts()

    @staticmethod
    def _register_admin_parts() -> None:
        """The KPI page, and points, tier, ledger and adjustments on the member's admin pages."""
        from django.contrib import admin as django_admin

        from members.models import Member

        from . import admin
        from .admin_site import admin_extensions

        django_admin.site.register_page(
            "kpis/",
            admin.kpi_view,
            name="kpis",
            title=_("Program KPIs"),
            description=_(
                "members, purchases, points and liability against the program's objectives"
            ),
        )
        admin_extensions.register(
            Member,
            columns=[admin.balance_column, admin.tier_column],
            filters=[admin.TierFilter],
            select_related=["points_account__tier"],
            urls=admin.member_points_urls,
            page_part=admin.member_points_context,
            panel_template="admin/loyalty/member_points.html",
            object_tools=admin.member_points_tools,
        )
        from .audit.admin import object_tools as audit_object_tools

        # The member's page links to the audit log of the member (adjustments, exports).
        admin_extensions.register(Member, object_tools=audit_object_tools)
