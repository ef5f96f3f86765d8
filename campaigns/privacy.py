"""Campaigns' part of a member's GDPR export and erasure (registered in CampaignsConfig.ready).

Export: every campaign message the member was part of (holdout included), what happened to it,
and the links they clicked. Erasure: the recipient rows stay (a campaign's results count them)
but lose the address, which becomes the member's erased placeholder, also in a recorded mail
server error; rows still waiting are skipped; the member's addresses leave the suppression list
(kept, they would be personal data without a member to protect: docs/privacy.md).
"""

from __future__ import annotations

from django.db.models import Q
from django.db.models.functions import Lower

from members import privacy as member_privacy

from .models import LinkClick, Recipient, RecipientStatus, SkipReason, SuppressedAddress


def export_messages(member) -> list[dict]:
    recipients = list(
        Recipient.objects.filter(member=member)
        .order_by("pk")
        .values(
            "pk",
            "campaign__name",
            "occurrence",
            "email",
            "language",
            "segment",
            "quadrant",
            "tier",
            "status",
            "skip_reason",
            "sent_at",
            "opened_at",
            "clicked_at",
            "bounced_at",
            "complained_at",
            "unsubscribed_at",
        )
    )
    clicks: dict[int, list[dict]] = {}
    for click in LinkClick.objects.filter(recipient__member=member).order_by("at", "pk"):
        clicks.setdefault(click.recipient_id, []).append({"url": click.url, "at": click.at})
    for recipient in recipients:
        recipient["campaign"] = recipient.pop("campaign__name")
        recipient["links_clicked"] = clicks.get(recipient.pop("pk"), [])
    return recipients


def owned_recipients(member) -> list:
    return [Recipient.objects.filter(member=member)]


def erase_recipients(member) -> None:
    """Runs before the member is pseudonymised: `member` still has their own address."""
    personal = member_privacy.PersonalData.of(member)
    placeholder = member_privacy.erased_email(member)
    rows = Recipient.objects.filter(member=member)
    rows.filter(status=RecipientStatus.PENDING).update(
        status=RecipientStatus.SKIPPED, skip_reason=SkipReason.INACTIVE
    )
    for recipient in rows.exclude(last_error=""):
        recipient.last_error = member_privacy.scrub(
            recipient.last_error, personal.anywhere, placeholder
        )[:300]
        recipient.save(update_fields=["last_error"])
    rows.update(email=placeholder)
    addresses = {address.lower() for address in personal.anywhere if "@" in address}
    SuppressedAddress.objects.alias(address=Lower("email")).filter(
        Q(address__in=addresses)
    ).delete()
