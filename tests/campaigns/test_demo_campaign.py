"""The demo has a sent campaign whose results show something, and the ledger stays whole."""

import io

import pytest
from django.core.management import call_command

from campaigns.models import Campaign, Recipient, RecipientStatus
from campaigns.selectors import campaign_results
from loyalty.services.consistency import ledger_consistency_check


@pytest.mark.django_db
def test_the_demo_campaign_was_sent_and_has_results(settings):
    settings.LANGUAGE_CODE = "en"
    call_command("demo_data", members=800, seed=7, verbosity=0)
    call_command("demo_segments", stdout=io.StringIO())
    out = io.StringIO()

    call_command("demo_campaigns", stdout=out)
    call_command("demo_campaigns", stdout=out)  # a second time: nothing more

    campaign = Campaign.objects.get()
    assert campaign.status == "sent" and campaign.started_at is not None
    assert set(campaign.segments) <= {"need_attention", "about_to_sleep", "at_risk", "cant_lose"}
    assert not Recipient.objects.filter(
        campaign=campaign,
        status__in=[RecipientStatus.PENDING, RecipientStatus.CLAIMED, RecipientStatus.SENDING],
    ).exists()
    report = campaign_results(campaign=campaign)
    assert report is not None
    total = report.total
    assert total.sent > 0 and total.holdout > 0 and total.opened > 0
    # Every recipient counted as clicked shows the link they clicked on their page.
    clicked = Recipient.objects.filter(campaign=campaign, clicked_at__isnull=False)
    assert total.clicked == clicked.count() > 0
    assert not clicked.filter(link_clicks__isnull=True).exists()
    assert total.mailed.converted > 0
    # The holdout is drawn at random (a fresh seed), so which group did better is not asserted.
    assert any(value for value in report.chart["mailed"] if value)
    assert "not created again" in out.getvalue()
    assert ledger_consistency_check().mismatches == []
