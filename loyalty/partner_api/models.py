"""API keys with scopes, and the first answers to requests with an Idempotency-Key."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey


class ApiScope(models.TextChoices):
    MEMBERS_READ = "members:read", _("Read members")
    MEMBERS_WRITE = "members:write", _("Enrol and update members")
    PURCHASES_WRITE = "purchases:write", _("Post purchases and refunds")
    REWARDS_READ = "rewards:read", _("Read rewards")
    REDEMPTIONS_WRITE = "redemptions:write", _("Redeem and cancel rewards")
    VOUCHERS_VALIDATE = "vouchers:validate", _("Validate and use vouchers")
    SEGMENTS_READ = "segments:read", _("Read segments")


class PartnerAPIKey(AbstractAPIKey):
    """A partner's key for the REST API: stored hashed (only the prefix is readable), shown once
    when created, with scopes, an expiry, revocation and the moment it was last used."""

    partner = models.ForeignKey(
        "loyalty.Partner",
        on_delete=models.CASCADE,
        related_name="api_keys",
        verbose_name=_("partner"),
    )
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    created_by = models.ForeignKey(
        "members.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("API key")  # type: ignore[assignment]  # the library types it str
        verbose_name_plural = _("API keys")  # type: ignore[assignment]

    def __str__(self) -> str:
        return gettext("%(name)s (key %(prefix)s…)") % {"name": self.name, "prefix": self.prefix}

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyRecord(models.Model):
    """The first response to a partner's request with an `Idempotency-Key` (Stripe semantics):
    written in the same transaction as the request's change, replayed for 24 hours."""

    partner = models.ForeignKey("loyalty.Partner", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(_("idempotency key"), max_length=255)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True)
    body = models.JSONField(_("response body"), null=True, encoder=DjangoJSONEncoder)
    content_type = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["partner", "key"], name="idempotency_key_unique")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return gettext("Idempotency key %(key)s") % {"key": self.key}
