"""Opens (pixel) and clicks (signed redirects) of campaign messages: recorded once, first event
wins, and no token ever redirects anywhere we did not sign (docs/campaigns.md, "Tracking")."""

import re

import pytest
from django.core import signing
from django.urls import reverse

from campaigns import services
from campaigns.models import LinkClick, Message, Recipient, RecipientStatus
from campaigns.tokens import click_token, open_url, unsubscribe_token
from campaigns.tracking import PIXEL_GIF, html_track

pytestmark = pytest.mark.django_db

SALE = "https://shop.example.com/sale?utm_source=mail&amp;utm_medium=email"


@pytest.fixture
def linked_message(message):
    message.html_en = (
        f'<p>Hi {{{{ member.first_name }}}}. <a href="{SALE}">See the sale</a> or '
        '<a href="{{ portal_url }}">your account</a>, '
        '<a href="mailto:help@example.com">mail us</a>.</p>'
    )
    message.text_en = "Hi {{ member.first_name }}. The sale: https://shop.example.com/sale"
    message.save()
    return message


@pytest.fixture
def sent(scored, campaign_of, committed, linked_message, mailoutbox):
    """One campaign sent to one English member; returns (recipient, the e-mail)."""
    scored(1, language="en", first_name="Noor")
    campaign = campaign_of(holdout_percent=0)
    committed(services.campaign_send_now, campaign=campaign, by=None)
    (email,) = mailoutbox
    return Recipient.objects.get(campaign=campaign), email


def _html(email) -> str:
    ((html, mimetype),) = email.alternatives
    assert mimetype == "text/html"
    return html


def _links(html: str) -> list[str]:
    return re.findall(r'<a\b[^>]*\shref="([^"]*)"', html)


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_the_html_links_are_signed_redirects_and_the_pixel_is_appended(sent):
    recipient, email = sent
    html = _html(email)
    links = _links(html)

    tracked = [link for link in links if "/e/c/" in link]
    assert len(tracked) == 3  # the sale, the account in the body and the footer's settings
    assert "https://shop.example.com" not in html
    assert "mailto:help@example.com" in links
    unsubscribe = [link for link in links if "/portal/email/unsubscribe/" in link]
    assert len(unsubscribe) == 1  # the footer's unsubscribe link is not tracked
    assert open_url(recipient_id=recipient.pk) in html
    assert html.rindex("/e/o/") < html.rindex("</body>")


def test_the_text_part_is_not_tracked(sent):
    _recipient, email = sent

    assert "https://shop.example.com/sale" in email.body
    assert "/e/c/" not in email.body and "/e/o/" not in email.body


def test_a_click_redirects_to_the_original_link_and_records_click_and_open(client, sent):
    recipient, email = sent
    sale = next(link for link in _links(_html(email)) if "/e/c/" in link)

    response = client.get(_path(sale))

    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/sale?utm_source=mail&utm_medium=email"
    recipient.refresh_from_db()
    assert recipient.clicked_at is not None
    assert recipient.opened_at == recipient.clicked_at  # a click implies an open
    assert list(LinkClick.objects.values_list("url", flat=True)) == [response["Location"]]


def test_the_first_click_wins_and_each_link_is_logged_once(client, sent):
    recipient, email = sent
    sale, account, _settings = (link for link in _links(_html(email)) if "/e/c/" in link)
    client.get(_path(sale))
    recipient.refresh_from_db()
    first = recipient.clicked_at

    client.get(_path(sale))
    client.get(_path(account))

    recipient.refresh_from_db()
    assert recipient.clicked_at == first
    assert LinkClick.objects.filter(recipient=recipient).count() == 2


def test_the_open_pixel_records_the_first_open_and_is_a_fresh_gif_without_cookies(client, sent):
    recipient, _email = sent
    pixel = _path(open_url(recipient_id=recipient.pk))

    response = client.get(pixel)
    recipient.refresh_from_db()
    first = recipient.opened_at
    client.get(pixel)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content == PIXEL_GIF
    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    assert "Set-Cookie" not in response.headers and not response.cookies
    assert first is not None
    recipient.refresh_from_db()
    assert recipient.opened_at == first
    assert recipient.clicked_at is None


def test_a_forged_pixel_token_still_gets_the_gif_and_records_nothing(client, sent):
    recipient, _email = sent
    forged = signing.Signer(salt="someone else").sign_object(recipient.pk)

    for token in (forged, "nonsense", str(recipient.pk)):
        response = client.get(reverse("campaign_tracking:open", args=[token]))
        assert response.status_code == 200
        assert response.content == PIXEL_GIF

    recipient.refresh_from_db()
    assert recipient.opened_at is None


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_forged_click_token_with_an_outside_url_never_redirects(client, sent, language):
    recipient, email = sent
    genuine = _path(next(link for link in _links(_html(email)) if "/e/c/" in link))
    genuine_token = genuine.rstrip("/").rsplit("/", 1)[1]
    evil = "https://evil.example.net/phish"
    other_key = signing.Signer(key="not-our-key", salt="campaigns.click").sign_object(
        [recipient.pk, evil]
    )
    wrong_salt = signing.Signer(salt="campaigns.unsubscribe").sign_object([recipient.pk, evil])
    # Our genuine signature glued to a payload naming the outside URL.
    payload = (
        signing.Signer(salt="x").sign_object([recipient.pk, evil], compress=True).rsplit(":", 1)[0]
    )
    spliced = payload + ":" + genuine_token.rsplit(":", 1)[1]
    unsubscribe = unsubscribe_token(member_id=recipient.member_id, campaign_id=1)

    for token in (other_key, wrong_salt, spliced, unsubscribe, "nonsense", evil.replace("/", "")):
        for query in ("", f"?next={evil}", f"?url={evil}&redirect={evil}"):
            response = client.get(
                reverse("campaign_tracking:click", args=[token]) + query,
                HTTP_ACCEPT_LANGUAGE=language,
            )
            assert response.status_code == 400
            assert "Location" not in response.headers
            # (The language switch's `next` echoes the path; Django's set_language refuses it.)
            assert 'href="https://evil.example.net' not in response.content.decode()
            assert f'<html lang="{language}">' in response.content.decode()

    recipient.refresh_from_db()
    assert recipient.clicked_at is None and recipient.opened_at is None


def test_a_genuine_token_ignores_redirect_parameters_in_the_request(client, sent):
    _recipient, email = sent
    genuine = _path(next(link for link in _links(_html(email)) if "/e/c/" in link))

    response = client.get(genuine + "?next=https://evil.example.net/&url=//evil.example.net")

    assert response.status_code == 302
    assert response["Location"].startswith("https://shop.example.com/sale?")


def test_a_signed_token_with_a_non_http_target_is_refused(client, sent):
    recipient, _email = sent
    token = click_token(recipient_id=recipient.pk, url="javascript:alert(1)")

    response = client.get(reverse("campaign_tracking:click", args=[token]))

    assert response.status_code == 400
    assert "Location" not in response.headers


def test_the_unsubscribe_link_of_a_campaign_records_unsubscribed_at(client, sent):
    recipient, _email = sent
    token = unsubscribe_token(member_id=recipient.member_id, campaign_id=recipient.campaign_id)

    client.get(reverse("campaigns:unsubscribe", args=[token]))
    recipient.refresh_from_db()
    assert recipient.unsubscribed_at is None  # GET only asks

    client.post(reverse("campaigns:unsubscribe", args=[token]))
    recipient.refresh_from_db()
    assert recipient.unsubscribed_at is not None


def test_tracking_rewrites_only_absolute_http_links_and_keeps_the_unsubscribe_link():
    unsubscribe = "https://loyalty.example/portal/email/unsubscribe/abc:def/"
    html = (
        "<html><body>"
        '<a href="https://a.example/x?y=1&amp;z=2">A</a>'
        "<a class='b' href='http://b.example/'>B</a>"
        '<a href="/relative">R</a><a href="#top">T</a><a href="mailto:x@y.z">M</a>'
        f'<a href="{unsubscribe}">U</a>'
        '<img src="https://img.example/i.png">'
        "</body></html>"
    )

    tracked = html_track(html_body=html, recipient_id=5, unsubscribe_url=unsubscribe)

    assert tracked.count("/e/c/") == 2
    for kept in ('href="/relative"', 'href="#top"', 'href="mailto:x@y.z"', unsubscribe):
        assert kept in tracked
    assert 'src="https://img.example/i.png"' in tracked
    assert tracked.index(">U</a>") < tracked.index("/e/o/") < tracked.index("</body></html>")
    tokens = re.findall(r"/e/c/([^/]+)/", tracked)
    assert [signing.Signer(salt="campaigns.click").unsign_object(token) for token in tokens] == [
        [5, "https://a.example/x?y=1&z=2"],
        [5, "http://b.example/"],
    ]


def test_a_message_previewed_or_test_sent_is_not_tracked(linked_message, mailoutbox):
    services.message_test_send(message=linked_message, to="colleague@example.com", language="en")

    ((html, _mimetype),) = mailoutbox[0].alternatives
    assert "/e/c/" not in html and "/e/o/" not in html
    assert Message.objects.count() == 1
    assert Recipient.objects.filter(status=RecipientStatus.SENT).count() == 0


def test_a_genuine_link_of_a_deleted_recipient_still_redirects_and_records_nothing(client, sent):
    recipient, email = sent
    sale = _path(next(link for link in _links(_html(email)) if "/e/c/" in link))
    recipient.campaign.delete()

    response = client.get(sale)

    assert response.status_code == 302
    assert response["Location"].startswith("https://shop.example.com/sale?")
    assert not LinkClick.objects.exists()
