"""Campaign pages: estimate, buttons that call services, progress, permissions per role."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign, CampaignStatus, Recipient, RecipientStatus

pytestmark = pytest.mark.django_db


def test_a_draft_shows_the_estimated_audience_and_its_buttons(admin_client, scored, campaign_of):
    scored(20)
    campaign = campaign_of(holdout_percent=10)

    response = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    body = response.content.decode()
    assert "About 20 members now: 2 in the holdout, 18 to mail" in body
    assert reverse("admin:campaigns_campaign_action", args=[campaign.pk, "send_now"]) in body
    assert reverse("admin:campaigns_campaign_action", args=[campaign.pk, "pause"]) not in body


def test_a_campaign_is_created_in_the_admin_and_sent_with_the_button(
    admin_client, scored, message, program, django_capture_on_commit_callbacks, mailoutbox
):
    scored(5)
    response = admin_client.post(
        reverse("admin:campaigns_campaign_add"),
        {
            "name": "Champions spring",
            "message": message.pk,
            "segments": ["champions"],
            "holdout_percent": "0",
            "transitions-TOTAL_FORMS": "0",
            "transitions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        sent = admin_client.post(
            reverse("admin:campaigns_campaign_action", args=[campaign.pk, "send_now"]), follow=True
        )

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert len(mailoutbox) == 5
    assert "The campaign is now sending." in sent.content.decode()
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert '<progress max="100" value="100"' in page.content.decode()
    assert "5 of 5 sent, 0 failed, 0 waiting" in page.content.decode()


def test_a_campaign_without_segments_is_refused(admin_client, message):
    response = admin_client.post(
        reverse("admin:campaigns_campaign_add"),
        {
            "name": "Nobody",
            "message": message.pk,
            "holdout_percent": "10",
            "transitions-TOTAL_FORMS": "0",
            "transitions-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert "Choose at least one segment" in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_support_agent_views_but_cannot_send(client, staff_in, scored, campaign_of):
    scored(3)
    campaign = campaign_of()
    client.force_login(staff_in("Support agent"))

    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    action = client.post(reverse("admin:campaigns_campaign_action", args=[campaign.pk, "send_now"]))

    assert page.status_code == 200
    assert "send_now" not in page.content.decode()
    assert action.status_code == 403
    assert Campaign.objects.get().status == CampaignStatus.DRAFT
    assert not Recipient.objects.filter(status=RecipientStatus.SENT).exists()


def test_a_sent_campaigns_states_are_counted_once_then_kept(
    admin_client, scored, campaign_of, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    scored(6)
    campaign = campaign_of(holdout_percent=0)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:campaigns_campaign_action", args=[campaign.pk, "send_now"])
        )
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    page = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    assert "6 of 6 sent" in admin_client.get(page).content.decode()

    with CaptureQueriesContext(connection) as queries:
        again = admin_client.get(page).content.decode()
        listed = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()

    counting = [q["sql"] for q in queries if "GROUP BY" in q["sql"] and "status" in q["sql"]]
    assert counting == []
    assert "6 of 6 sent" in again and "6 of 6 sent" in listed


def test_recipients_are_found_by_the_members_number_or_address(admin_client, scored, campaign_of):
    from tests.factories import RecipientFactory

    members = scored(3)
    campaign = campaign_of()
    for member in members:
        RecipientFactory(campaign=campaign, member=member)
    wanted = members[1]
    url = reverse("admin:campaigns_recipient_changelist")

    for term in (wanted.member_number, wanted.email.upper()):
        rows = admin_client.get(url, {"q": term}).context["cl"].result_list
        assert [row.member_id for row in rows] == [wanted.pk]
    assert list(admin_client.get(url, {"q": "nobody@example.org"}).context["cl"].result_list) == []
