"""Partners' webhook endpoints, the events told to them and one delivery per (event, endpoint)."""

from __future__ import annotations

import base64
import secrets
import time

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loyalty.models import Partner


class EventType(models.TextChoices):
    """What a partner can subscribe to (a fixed list: the contract of docs/webhooks.md)."""

    MEMBER_ENROLLED = "member.enrolled", _("Member enrolled")
    MEMBER_UPDATED = "member.updated", _("Member updated")
    POINTS_EARNED = "points.earned", _("Points earned")
    POINTS_REDEEMED = "points.redeemed", _("Points redeemed")
    POINTS_EXPIRED = "points.expired", _("Points expired")
    TIER_CHANGED = "tier.changed", _("Tier changed")
    REWARD_REDEEMED = "reward.redeemed", _("Reward redeemed")
    REDEMPTION_CANCELLED = "redemption.cancelled", _("Redemption cancelled")
    SEGMENT_CHANGED = "segment.changed", _("Segment changed")
    CONSENT_CHANGED = "consent.changed", _("Consent changed")


# Sent by the admin's "send a test event" to one endpoint, whatever it subscribes to.
TEST_EVENT_TYPE = "webhook.test"

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes, as Standard Webhooks' libraries expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    """`msg_` + 26 hex digits: milliseconds first, so ids sort by creation time."""
    return f"msg_{int(time.time() * 1000):012x}{secrets.token_hex(7)}"


class WebhookEndpoint(models.Model):
    """A partner's https URL that receives the events it subscribes to (none listed = all).

    `previous_secret` still signs (next to `secret`) until `previous_secret_expires_at`, so a
    partner can switch to a rotated secret without losing a message.
    """

    partner = models.ForeignKey(
        Partner,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        verbose_name=_("partner"),
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(
        _("event types"),
        default=list,
        blank=True,
        help_text=_("The events sent to this URL; none selected means all of them."),
    )
    secret = models.CharField(_("signing secret"), max_length=100, default=new_secret)
    previous_secret = models.CharField(_("previous signing secret"), max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret valid until"), null=True, blank=True
    )
    is_active = models.BooleanField(_("active"), default=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("reason disabled"), max_length=200, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("failed attempts in a row"), default=0)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["partner__name", "url", "pk"]

    def __str__(self) -> str:
        return f"{self.partner}: {self.url}"

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(models.Model):
    """One message: its id is the `webhook-id` header, the same for every attempt and endpoint."""

    id = models.CharField(
        _("message id"), primary_key=True, max_length=40, default=new_message_id, editable=False
    )
    type = models.CharField(_("type"), max_length=50, db_index=True)
    payload = models.JSONField(_("payload"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return gettext("%(type)s (message %(id)s)") % {"type": self.type_label, "id": self.id}

    @property
    def type_label(self) -> str:
        if self.type == TEST_EVENT_TYPE:
            return gettext("Test event")
        return str(EventType(self.type).label) if self.type in EventType.values else self.type


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One event to one endpoint, tried until it is delivered or its retries run out.

    `next_attempt_at` doubles as the lease of whoever is sending: claiming a delivery moves it
    a minute ahead, so nobody else sends it meanwhile, and a worker that dies mid-send leaves it
    due again a minute later.
    """

    event = models.ForeignKey(
        WebhookEvent, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("endpoint"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.TextField(_("last error"), blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once"),
        ]
        indexes = [
            # The periodic task reads only what is pending: small, however many were delivered.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(event)s to %(url)s") % {
            "event": self.event.type_label,
            "url": self.endpoint.url,
        }
