"""Mail providers' bounce, complaint, unsubscribe, open and click events through django-anymail's
real tracking webhook URLs, with the providers' own JSON formats and basic auth."""

import base64
import hashlib
import hmac
import json

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from campaigns import services
from campaigns.models import (
    CampaignSettings,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    SkipReason,
    SuppressedAddress,
)
from campaigns.ratelimit import NoLimit
from campaigns.sending import batch_send, campaign_send, recipients_claim
from members.selectors import consent_granted

pytestmark = pytest.mark.django_db

SIGNING_KEY = "mailgun-signing-key"


def _auth(secret: str | None = None) -> dict:
    """Basic auth with the configured ANYMAIL WEBHOOK_SECRET (loyalty/settings/test.py)."""
    secret = secret or settings.ANYMAIL["WEBHOOK_SECRET"][0]
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def post_postmark(client, payload: dict, secret: str | None = None):
    return client.post(
        reverse("anymail:postmark_tracking_webhook"),
        json.dumps(payload),
        content_type="application/json",
        **_auth(secret),
    )


def postmark_bounce(email: str, *, kind: str = "HardBounce", recipient=None) -> dict:
    """A Postmark bounce webhook as Postmark documents it."""
    return {
        "RecordType": "Bounce" if kind != "SpamComplaint" else "SpamComplaint",
        "MessageStream": "broadcast",
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": {"HardBounce": 1, "SoftBounce": 4096, "SpamComplaint": 512}[kind],
        "Name": "Hard bounce",
        "Tag": "campaign",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"loyalty_recipient": str(recipient.pk)} if recipient else {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "loyalty@example.com",
        "BouncedAt": "2026-11-26T07:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Hello",
    }


@pytest.fixture
def sent(scored, campaign_of, committed, mailoutbox):
    """A campaign sent to three members; returns their recipients."""
    scored(3, language="en")
    campaign = campaign_of(holdout_percent=0)
    committed(services.campaign_send_now, campaign=campaign, by=None)
    assert len(mailoutbox) == 3
    return list(Recipient.objects.filter(campaign=campaign).order_by("pk"))


def test_a_hard_bounce_suppresses_the_address_and_stamps_the_recipient(client, sent):
    recipient = sent[0]

    response = post_postmark(client, postmark_bounce(recipient.email, recipient=recipient))

    assert response.status_code == 200
    suppressed = SuppressedAddress.objects.get()
    assert (suppressed.email, suppressed.reason) == (recipient.email, "hard_bounce")
    assert suppressed.note.startswith("Postmark: ")
    recipient.refresh_from_db()
    assert recipient.bounced_at is not None
    assert recipient.bounced_at.year == 2026 and recipient.bounced_at.minute == 33
    assert Recipient.objects.filter(bounced_at__isnull=False).count() == 1


def test_a_spam_complaint_suppresses_with_its_reason(client, sent):
    recipient = sent[1]

    post_postmark(
        client, postmark_bounce(recipient.email, kind="SpamComplaint", recipient=recipient)
    )

    assert SuppressedAddress.objects.get().reason == "complaint"
    recipient.refresh_from_db()
    assert recipient.complained_at is not None and recipient.bounced_at is None


def test_a_soft_bounce_changes_nothing(client, sent):
    recipient = sent[0]

    response = post_postmark(
        client, postmark_bounce(recipient.email, kind="SoftBounce", recipient=recipient)
    )

    assert response.status_code == 200
    assert not SuppressedAddress.objects.exists()
    recipient.refresh_from_db()
    assert recipient.bounced_at is None


def test_without_the_webhook_secret_nothing_is_recorded(client, sent):
    recipient = sent[0]
    payload = postmark_bounce(recipient.email, recipient=recipient)

    wrong = post_postmark(client, payload, secret="anymail:guess")
    missing = client.post(
        reverse("anymail:postmark_tracking_webhook"),
        json.dumps(payload),
        content_type="application/json",
    )

    assert (wrong.status_code, missing.status_code) == (400, 400)
    assert not SuppressedAddress.objects.exists()


def test_an_event_for_an_unknown_message_still_suppresses_once_case_insensitively(client, sent):
    post_postmark(client, postmark_bounce("Ghost@Example.com"))
    post_postmark(client, postmark_bounce("ghost@example.com"))
    post_postmark(client, postmark_bounce("GHOST@example.com", kind="SpamComplaint"))

    suppressed = SuppressedAddress.objects.get()
    assert (suppressed.email, suppressed.reason) == ("Ghost@Example.com", "hard_bounce")
    assert not Recipient.objects.filter(bounced_at__isnull=False).exists()


def test_metadata_of_another_address_does_not_stamp_that_recipient(client, sent):
    post_postmark(client, postmark_bounce("someone.else@example.com", recipient=sent[0]))

    sent[0].refresh_from_db()
    assert sent[0].bounced_at is None
    assert SuppressedAddress.objects.get().email == "someone.else@example.com"


def test_a_provider_unsubscribe_withdraws_consent_like_the_link(client, sent):
    recipient = sent[2]
    assert consent_granted(member=recipient.member)

    post_postmark(
        client,
        {
            "RecordType": "SubscriptionChange",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "ServerID": 23,
            "MessageStream": "broadcast",
            "ChangedAt": "2026-11-26T07:53:34.416071Z",
            "Recipient": recipient.email,
            "Origin": "Recipient",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
            "Tag": "campaign",
            "Metadata": {"loyalty_recipient": str(recipient.pk)},
        },
    )

    assert not consent_granted(member=recipient.member)
    recipient.refresh_from_db()
    assert recipient.unsubscribed_at is not None
    assert not SuppressedAddress.objects.exists()


def test_provider_opens_and_clicks_stamp_the_recipient(client, sent):
    recipient = sent[0]
    common = {
        "MessageStream": "broadcast",
        "Metadata": {"loyalty_recipient": str(recipient.pk)},
        "Recipient": recipient.email,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ReceivedAt": "2026-11-26T07:40:00Z",
        "Tag": "campaign",
        "UserAgent": "Mozilla/5.0",
    }

    post_postmark(
        client, {**common, "RecordType": "Open", "FirstOpen": True, "Platform": "WebMail"}
    )
    recipient.refresh_from_db()
    assert recipient.opened_at is not None and recipient.clicked_at is None

    post_postmark(
        client,
        {
            **common,
            "RecordType": "Click",
            "ReceivedAt": "2026-11-26T07:41:00Z",
            "ClickLocation": "HTML",
            "OriginalLink": "https://shop.example.com/sale",
        },
    )
    recipient.refresh_from_db()
    assert recipient.clicked_at is not None and recipient.clicked_at > recipient.opened_at
    assert list(recipient.link_clicks.values_list("url", flat=True)) == [
        "https://shop.example.com/sale"
    ]


def _mailgun(event_data: dict) -> dict:
    timestamp, token = "1764142434", "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(
        SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event_data,
    }


def _mailgun_failure(recipient, severity: str) -> dict:
    return {
        "event": "failed",
        "severity": severity,
        "reason": "bounce" if severity == "permanent" else "generic",
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": 1764142434.908181,
        "recipient": recipient.email,
        "delivery-status": {
            "code": 550 if severity == "permanent" else 452,
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "description": "",
        },
        # Mailgun keeps our Message-ID (without the angle brackets).
        "message": {
            "headers": {
                "to": recipient.email,
                "message-id": recipient.message_id.strip("<>"),
                "from": "loyalty@example.com",
                "subject": "Hello",
            },
            "attachments": [],
            "size": 4111,
        },
        "user-variables": {},
    }


@pytest.fixture
def mailgun(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}


def test_a_mailgun_permanent_failure_finds_the_recipient_by_our_message_id(client, sent, mailgun):
    recipient = sent[1]

    response = client.post(
        reverse("anymail:mailgun_tracking_webhook"),
        json.dumps(_mailgun(_mailgun_failure(recipient, "permanent"))),
        content_type="application/json",
        **_auth(),
    )

    assert response.status_code == 200
    assert SuppressedAddress.objects.get().reason == "hard_bounce"
    recipient.refresh_from_db()
    assert recipient.bounced_at is not None


def test_a_mailgun_temporary_failure_or_a_bad_signature_changes_nothing(client, sent, mailgun):
    recipient = sent[1]
    forged = _mailgun(_mailgun_failure(recipient, "permanent"))
    forged["signature"]["signature"] = "0" * 64

    temporary = client.post(
        reverse("anymail:mailgun_tracking_webhook"),
        json.dumps(_mailgun(_mailgun_failure(recipient, "temporary"))),
        content_type="application/json",
        **_auth(),
    )
    bad = client.post(
        reverse("anymail:mailgun_tracking_webhook"),
        json.dumps(forged),
        content_type="application/json",
        **_auth(),
    )

    assert (temporary.status_code, bad.status_code) == (200, 400)
    assert not SuppressedAddress.objects.exists()
    recipient.refresh_from_db()
    assert recipient.bounced_at is None


def test_an_address_bounced_during_a_campaign_is_skipped_for_the_rest(
    client, scored, campaign_of, mailoutbox
):
    scored(6, language="en")
    CampaignSettings.objects.update_or_create(pk=1, defaults={"batch_size": 3})
    campaign = campaign_of(holdout_percent=0)
    services.audience_freeze(campaign=campaign)
    campaign.status = CampaignStatus.SENDING
    campaign.save()
    first = recipients_claim(campaign_id=campaign.pk, owner="worker-1", size=3)
    batch_send(campaign=campaign, recipients=first, owner="worker-1", rate=NoLimit())
    later = Recipient.objects.filter(campaign=campaign, status=RecipientStatus.PENDING).first()

    post_postmark(client, postmark_bounce(later.email.upper()))
    assert campaign_send(campaign_id=campaign.pk, owner="worker-2") == "done"

    later.refresh_from_db()
    assert (later.status, later.skip_reason) == (RecipientStatus.SKIPPED, SkipReason.SUPPRESSED)
    assert later.email not in [email.to[0] for email in mailoutbox]
    assert len(mailoutbox) == 5


def test_the_admin_shows_tracking_columns_and_an_editable_suppression_list(admin_client, sent):
    post_postmark(Client(), postmark_bounce(sent[0].email, recipient=sent[0]))

    recipients = admin_client.get(reverse("admin:campaigns_recipient_changelist")).content.decode()
    suppressed = SuppressedAddress.objects.get()
    change = admin_client.get(
        reverse("admin:campaigns_suppressedaddress_change", args=[suppressed.pk])
    )
    edited = admin_client.post(
        reverse("admin:campaigns_suppressedaddress_change", args=[suppressed.pk]),
        {
            "email": suppressed.email,
            "reason": "manual",
            "note": "checked by support",
            "created_at_0": "2026-11-26",
            "created_at_1": "08:00:00",
        },
    )

    # One column says what happened; the times are on the recipient's page.
    assert "What happened" in recipients and '<td class="field-tracked">bounced</td>' in recipients
    recipient_page = admin_client.get(
        reverse("admin:campaigns_recipient_change", args=[sent[0].pk])
    ).content.decode()
    for field in ("Opened at", "Clicked at", "Bounced at", "Complained at", "Unsubscribed at"):
        assert field in recipient_page
    assert change.status_code == 200 and "Hard bounce" in change.content.decode()
    assert edited.status_code == 302, edited.context["adminform"].form.errors
    suppressed.refresh_from_db()
    assert (suppressed.reason, suppressed.note) == ("manual", "checked by support")


def test_a_provider_unsubscribe_of_an_unknown_message_finds_the_member_by_address(client, sent):
    member = sent[0].member

    post_postmark(
        client,
        {
            "RecordType": "SubscriptionChange",
            "MessageID": "00000000-0000-0000-0000-000000000000",
            "MessageStream": "broadcast",
            "ChangedAt": "2026-11-26T07:53:34Z",
            "Recipient": member.email.upper(),
            "Origin": "Recipient",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
        },
    )

    assert not consent_granted(member=member)
    assert all(consent_granted(member=other.member) for other in sent[1:])
    assert not Recipient.objects.filter(unsubscribed_at__isnull=False).exists()


def test_a_campaign_through_an_anymail_provider_carries_the_recipient_and_survives_a_refusal(
    scored, campaign_of, committed, settings, monkeypatch
):
    from django.core import mail

    from tests.campaigns.anymail_backends import RefusingEmailBackend

    members = scored(3, language="en")
    settings.EMAIL_BACKEND = "tests.campaigns.anymail_backends.RefusingEmailBackend"
    monkeypatch.setattr(RefusingEmailBackend, "refused", {members[0].email})
    mail.outbox = []
    campaign = campaign_of(holdout_percent=0)

    committed(services.campaign_send_now, campaign=campaign, by=None)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    refused = Recipient.objects.get(campaign=campaign, member=members[0])
    assert refused.status == RecipientStatus.FAILED and refused.attempts == 1
    assert "refused" in refused.last_error.lower() or "rejected" in refused.last_error.lower()
    sent = Recipient.objects.filter(campaign=campaign, status=RecipientStatus.SENT)
    assert sent.count() == 2
    params = {message.to[0]: message.anymail_test_params for message in mail.outbox}
    for recipient in sent:
        assert params[recipient.email]["metadata"] == {"loyalty_recipient": str(recipient.pk)}
        assert params[recipient.email]["extra_headers"]["Message-ID"] == recipient.message_id
        assert "/e/o/" in params[recipient.email]["html_body"]
