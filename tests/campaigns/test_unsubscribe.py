"""One-click unsubscribe (RFC 8058): GET asks, POST unsubscribes, a forged token does neither."""

import pytest
from django.urls import reverse

from campaigns.tokens import unsubscribe_token
from members.models import ConsentRecord
from members.selectors import consent_granted
from tests.factories import ConsentRecordFactory, MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribed():
    member = MemberFactory(language="nl", email="lisa@example.com")
    ConsentRecordFactory(member=member, channel="email", granted=True, source="enrolment")
    return member


def _url(member, campaign_id=7) -> str:
    token = unsubscribe_token(member_id=member.pk, campaign_id=campaign_id)
    return reverse("campaigns:unsubscribe", args=[token])


def test_get_only_asks_and_changes_nothing(client, subscribed):
    response = client.get(_url(subscribed))

    assert response.status_code == 200
    assert '<html lang="nl">' in response.content.decode()  # the member's language
    assert consent_granted(member=subscribed)
    assert ConsentRecord.objects.filter(member=subscribed).count() == 1


def test_one_click_post_unsubscribes_at_once_with_a_consent_record(client, subscribed):
    response = client.post(
        _url(subscribed),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert not consent_granted(member=subscribed)
    record = ConsentRecord.objects.filter(member=subscribed).order_by("-pk").first()
    assert (record.channel, record.granted) == ("email", False)
    assert record.source == "unsubscribe link, campaign 7"


def test_a_second_post_records_nothing_new(client, subscribed):
    client.post(_url(subscribed))
    client.post(_url(subscribed))

    assert ConsentRecord.objects.filter(member=subscribed).count() == 2


def test_the_link_opened_again_after_unsubscribing_says_so_instead_of_asking_again(
    client, subscribed
):
    client.post(_url(subscribed))

    page = client.get(_url(subscribed)).content.decode()

    assert "Je was al afgemeld" in page and "lisa@example.com" in page
    assert "<form" not in page.split("<main", 1)[-1]  # no second button to press
    assert ConsentRecord.objects.filter(member=subscribed).count() == 2


def test_an_erased_members_link_shows_no_placeholder_address(client, subscribed):
    from members.services import member_erase

    member_erase(member=subscribed)

    page = client.get(_url(subscribed)).content.decode()

    assert "Je was al afgemeld" in page and "erased" not in page


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_token_neither_shows_nor_unsubscribes(client, subscribed, method):
    token = unsubscribe_token(member_id=subscribed.pk)
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    other = MemberFactory()
    tampered = unsubscribe_token(member_id=other.pk).split(":")[0] + ":" + token.split(":", 1)[1]

    for bad in (forged, tampered, "nonsense"):
        response = getattr(client, method)(reverse("campaigns:unsubscribe", args=[bad]))
        assert response.status_code == 400
        assert subscribed.email not in response.content.decode()

    assert consent_granted(member=subscribed)
    assert ConsentRecord.objects.count() == 1


def test_the_confirmation_page_is_english_for_an_english_member(client):
    member = MemberFactory(language="en")
    ConsentRecordFactory(member=member, channel="email", granted=True, source="enrolment")

    response = client.get(_url(member))

    assert "Unsubscribe from our e-mails?" in response.content.decode()
