"""One row per change a staff member made (see `loyalty.audit`)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    ADDED = "object.added", _("Added")
    CHANGED = "object.changed", _("Changed")
    DELETED = "object.deleted", _("Deleted")
    POINTS_ADJUSTED = "points.adjusted", _("Points adjusted")
    PURCHASE_REFUNDED = "purchase.refunded", _("Purchase refunded")
    REDEMPTION_CANCELLED = "redemption.cancelled", _("Redemption cancelled")
    PERSONAL_DATA_EXPORTED = "personal_data.exported", _("Personal data exported")
    SEGMENT_EXPORTED = "segment.exported", _("Segment exported")
    MEMBER_ERASED = "member.erased", _("Member erased")
    API_KEY_CREATED = "api_key.created", _("API key created")
    API_KEY_REVOKED = "api_key.revoked", _("API key revoked")
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", _("Webhook secret rotated")
    WEBHOOK_ENABLED = "webhook.enabled", _("Webhook endpoint enabled")


class AuditEntry(models.Model):
    """Who (`actor`, with the name kept as text should the login go), when, what (the action,
    the object and a description in the reader's language, the changed fields with old and new
    values) and why (`reason`, where the service takes one).

    `description` is an untranslated message (marked with gettext_noop where it is written)
    with `description_params`, shown in the language of whoever reads the log."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
        db_index=False,  # audit_actor_idx leads with it
    )
    actor_name = models.CharField(_("staff user (as recorded)"), max_length=254, blank=True)
    action = models.CharField(_("action"), max_length=40, choices=AuditAction.choices)
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("object type"),
        db_index=False,  # audit_object_idx leads with it
    )
    object_id = models.CharField(_("object id"), max_length=255, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    description_params = models.JSONField(_("description parameters"), default=dict, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-pk"]
        # Entries are written by services only: no add, change or delete permission exists.
        default_permissions = ("view",)
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="audit_created_idx"),
            models.Index(fields=["content_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["actor", "-created_at"], name="audit_actor_idx"),
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.object_repr or self.summary}"

    @property
    def summary(self) -> str:
        """The description in the active language."""
        if not self.description:
            return ""
        text = gettext(self.description)
        try:
            return text % self.description_params if self.description_params else text
        except (KeyError, TypeError, ValueError):
            return text
