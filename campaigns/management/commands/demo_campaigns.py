"""A demo campaign that was sent nine days ago, with results: `manage.py demo_campaigns`.

The audience is frozen by the real service (segments of the current run, holdout, frequency
cap); the mailed rows are recorded as sent without sending mail (one UPDATE), and a share of
the recipients (more than of the holdout) buys in the days after, through the purchase service
(points earned, ledger consistent), so the results page has conversions, an uplift and a chart.
Runs once: nothing happens when a campaign exists."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignStatus,
    CampaignTransition,
    LinkClick,
    Message,
    Recipient,
    RecipientStatus,
)
from campaigns.services import audience_freeze
from loyalty.models import Partner
from loyalty.services.purchases import PurchaseInput, purchases_record_batch
from members.models import Member
from segmentation.selectors import current_run

SENT_DAYS_AGO = 9
SEGMENTS = ["need_attention", "about_to_sleep", "at_risk", "cant_lose"]
# Extra buyers in the days after the send, on top of the demo history's own purchases.
RESPONSE = {RecipientStatus.SENT: 0.14, RecipientStatus.HOLDOUT: 0.03}
OPENED, CLICKED = 0.42, 0.11

MESSAGE = {
    "name": "We missen je (demo)",
    "subject_nl": "{{ member.first_name }}, we missen je",
    "subject_en": "{{ member.first_name }}, we miss you",
    "preheader_nl": "Je hebt nog {{ points.balance }} {{ points.name }}",
    "preheader_en": "You still have {{ points.balance }} {{ points.name }}",
    "html_nl": "<h1>Hoi {{ member.first_name }}</h1><p>Het is even geleden. Je hebt nog "
    "{{ points.balance }} {{ points.name }}: kom snel langs.</p>"
    '<p><a href="{{ portal_url }}">Bekijk je punten</a></p>',
    "html_en": "<h1>Hi {{ member.first_name }}</h1><p>It has been a while. You still have "
    "{{ points.balance }} {{ points.name }}: come and see us soon.</p>"
    '<p><a href="{{ portal_url }}">See your points</a></p>',
    "text_nl": "Hoi {{ member.first_name }}, je hebt nog {{ points.balance }} {{ points.name }}.",
    "text_en": "Hi {{ member.first_name }}, you still have {{ points.balance }} {{ points.name }}.",
}


class Command(BaseCommand):
    help = "Create a demo campaign sent nine days ago, with its results (once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **options) -> None:
        if Campaign.objects.exists():
            self.stdout.write("Campaigns exist; the demo campaign is not created again.")
            return
        if current_run() is None:
            self.stdout.write("No segmentation run yet; run demo_segments first.")
            return
        rng = random.Random(options["seed"])
        now = timezone.now()
        started = now - dt.timedelta(days=SENT_DAYS_AGO)
        with transaction.atomic():
            message, _created = Message.objects.get_or_create(
                name=MESSAGE["name"], defaults=MESSAGE
            )
            campaign = Campaign.objects.create(
                name="Win back (demo)",
                message=message,
                segments=SEGMENTS,
                holdout_percent=15,
                status=CampaignStatus.SENDING,
                started_at=started,
                created_at=started - dt.timedelta(days=1),
            )
            CampaignTransition.objects.create(
                campaign=campaign,
                from_status=CampaignStatus.DRAFT,
                to_status=CampaignStatus.SENDING,
                at=started,
                note="demo",
            )
            frozen = audience_freeze(campaign=campaign)
            sent_at = started + dt.timedelta(minutes=4)
            Recipient.objects.filter(campaign=campaign, status=RecipientStatus.PENDING).update(
                status=RecipientStatus.SENT, sent_at=sent_at
            )
            mailed = list(
                Recipient.objects.filter(campaign=campaign, status=RecipientStatus.SENT)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            opened = [pk for pk in mailed if rng.random() < OPENED]
            Recipient.objects.filter(pk__in=opened).update(
                opened_at=sent_at + dt.timedelta(hours=2)
            )
            clicked = [pk for pk in opened if rng.random() < CLICKED / OPENED]
            Recipient.objects.filter(pk__in=clicked).update(
                clicked_at=sent_at + dt.timedelta(hours=3)
            )
            # What they clicked: the message's one link (the recipient page lists it).
            portal_url = settings.SITE_URL.rstrip("/") + reverse("points:dashboard")
            LinkClick.objects.bulk_create(
                LinkClick(recipient_id=pk, url=portal_url, at=sent_at + dt.timedelta(hours=3))
                for pk in clicked
            )
            campaign.status = CampaignStatus.SENT
            campaign.finished_at = sent_at + dt.timedelta(minutes=1)
            campaign.save(update_fields=["status", "finished_at"])
            CampaignTransition.objects.create(
                campaign=campaign,
                from_status=CampaignStatus.SENDING,
                to_status=CampaignStatus.SENT,
                at=campaign.finished_at,
                note="demo",
            )
            bought = self._responses(campaign, rng, start=sent_at, until=now)
        self.stdout.write(
            f"Demo campaign: {frozen} recipients frozen, {len(mailed)} recorded as sent, "
            f"{bought} purchases after the send."
        )

    @staticmethod
    def _responses(campaign: Campaign, rng: random.Random, *, start, until) -> int:
        partner = Partner.objects.filter(is_active=True).order_by("pk").first()
        if partner is None:
            return 0
        rows = Recipient.objects.filter(campaign=campaign, status__in=list(RESPONSE)).values_list(
            "member_id", "status"
        )
        chosen = [member_id for member_id, status in rows if rng.random() < RESPONSE[status]]
        members = Member.objects.in_bulk(chosen)
        span = (until - dt.timedelta(hours=2) - start).total_seconds()
        items = [
            PurchaseInput(
                external_id=f"DEMO-CAMPAIGN-{campaign.pk}-{member_id}",
                member=members[member_id],
                amount=Decimal(rng.randrange(1500, 9000)) / 100,
                purchased_at=start + dt.timedelta(seconds=span * rng.random() ** 1.5),
                store="Utrecht Centrum",
            )
            for member_id in chosen
        ]
        outcomes = purchases_record_batch(partner=partner, items=items)
        return sum(1 for outcome in outcomes if not isinstance(outcome, Exception))
