from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")

    def ready(self) -> None:
        from . import privacy

        # The copies Django and its add-ons keep (see members/privacy.py).
        privacy.register_eraser(privacy.erase_sessions)
        privacy.register_eraser(privacy.erase_login_attempts)
        privacy.register_eraser(privacy.erase_from_invitation_imports)
