"""Every e-mail fits a phone: rendered in Chromium at 375 px (a phone) and 600 px (the widest
it gets), nothing scrolls sideways, body text is at least 14 px, buttons are at least 44 px
high, and `<html lang>` names the language the e-mail is written in.

The e-mails are the ones the services send (through the SMTP sink), not templates rendered
with made-up context."""

import base64
import re
from pathlib import Path

import pytest
from django.urls import reverse

from loyalty.webhooks.services import endpoint_disabled_notify
from members.services import (
    already_member_email_send,
    confirmation_email_send,
    invitation_send,
    member_invite,
)
from rewards.services import redemption_email_send
from tests.factories import (
    MemberFactory,
    MemberWithLoginFactory,
    PartnerFactory,
    RedemptionFactory,
    WebhookEndpointFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "emails"
SHOTS = Path("/tmp/briefs/shots/emails")
WIDTHS = (375, 600)
LANGUAGES = ("nl", "en")
EMAILS = (
    "confirm_email",
    "already_member",
    "invitation",
    "password_reset",
    "redemption",
    "webhook_disabled",
)

# Long words are what push a fluid e-mail wider than a phone: give every e-mail some.
LONG_NAME = "Maximiliaan-Alexander"


def _send(kind: str, language: str, client, settings) -> None:
    """Have the program send one e-mail of `kind`, in `language`, to the SMTP sink."""
    if kind == "confirm_email":
        member = MemberFactory(status="pending", language=language, first_name=LONG_NAME)
        confirmation_email_send(member_id=member.pk)
    elif kind == "already_member":
        member = MemberFactory(language=language, first_name=LONG_NAME)
        already_member_email_send(member_id=member.pk)
    elif kind == "invitation":
        invitation = member_invite(
            email="uitgenodigd@example.com", first_name=LONG_NAME, language=language
        )
        invitation_send(invitation_id=invitation.pk)
    elif kind == "password_reset":
        MemberWithLoginFactory(email="vergeten@example.com", language=language)
        client.post(reverse("members:password_reset"), {"email": "vergeten@example.com"})
    elif kind == "redemption":
        redemption = RedemptionFactory(
            member__language=language,
            member__first_name=LONG_NAME,
            code="WINTERACTIEKORTING2026XL",
            reward__name_nl="Cadeaubon van vijfentwintig euro bij de boekhandel",
            reward__name_en="Gift card of twenty-five euros at the bookshop",
        )
        redemption_email_send(redemption_id=redemption.pk)
    elif kind == "webhook_disabled":
        settings.LANGUAGE_CODE = language  # partners get the program's language
        endpoint = WebhookEndpointFactory(
            partner=PartnerFactory(name="Boekhandel", contact_email="ict@boekhandel.example"),
            url="https://crm.boekhandel.example/api/v2/webhooks/loyalty-program/receive-events",
            is_active=False,
            disabled_reason="HTTP 503 Service Unavailable",
        )
        endpoint_disabled_notify(endpoint_id=endpoint.pk)


def _html_with_inline_images(message) -> str:
    """The HTML part, its `cid:` images swapped for data: URLs (a page has no MIME parts)."""
    html = message.get_body(preferencelist=("html",)).get_content()
    for part in message.walk():
        content_id = part["Content-ID"]
        if content_id:
            data = base64.b64encode(part.get_content()).decode()
            html = html.replace(f"cid:{content_id.strip('<>')}", f"data:image/png;base64,{data}")
    return html


MEASURE = """(width) => {
    const root = document.documentElement;
    const visible = (el) => {
        const style = getComputedStyle(el);
        const box = el.getBoundingClientRect();
        return style.display !== "none" && style.visibility !== "hidden"
            && box.width > 0 && box.height > 0;
    };
    const texts = [];
    for (const el of document.body.querySelectorAll("*")) {
        const ownText = [...el.childNodes].some(
            (node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
        if (ownText && visible(el)) {
            texts.push({tag: el.tagName, text: el.textContent.trim().slice(0, 40),
                        size: parseFloat(getComputedStyle(el).fontSize)});
        }
    }
    const wide = [...document.body.querySelectorAll("*")]
        .filter((el) => visible(el) && el.getBoundingClientRect().right > width + 0.5)
        .map((el) => el.tagName + " " + el.getBoundingClientRect().right);
    const buttons = [...document.querySelectorAll("a")]
        .filter((a) => getComputedStyle(a).display === "inline-block")
        .map((a) => ({text: a.textContent.trim(), height: a.getBoundingClientRect().height}));
    return {lang: root.lang, scrollWidth: root.scrollWidth, texts, wide, buttons};
}"""


@pytest.fixture
def phone(browser):
    contexts = []

    def open_at(width: int):
        context = browser.new_context(
            viewport={"width": width, "height": 800}, is_mobile=width < 600, has_touch=True
        )
        contexts.append(context)
        return context.new_page()

    yield open_at
    for context in contexts:
        context.close()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", EMAILS)
def test_every_email_fits_a_phone_and_names_its_language(
    kind, language, program, smtp_sink, client, settings, phone
):
    _send(kind, language, client, settings)
    [message] = smtp_sink.wait_for(1)
    html = _html_with_inline_images(message)

    for width in WIDTHS:
        page = phone(width)
        page.set_content(html, wait_until="load")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{kind}-{language}-{width}.png"), full_page=True)
        measured = page.evaluate(MEASURE, width)

        assert measured["lang"] == language
        assert measured["scrollWidth"] <= width, measured["wide"]
        assert measured["wide"] == []
        small = [text for text in measured["texts"] if text["size"] < 14]
        assert small == [], small
        assert measured["texts"], "the e-mail shows text"
        for button in measured["buttons"]:
            assert button["height"] >= 44, button
        if kind != "webhook_disabled":  # a partner notice has nothing to click
            assert measured["buttons"], "the e-mail has its button"


def test_the_email_templates_have_no_fixed_width_wider_than_a_phones_content():
    """Fluid up to 600 px: only Outlook's conditional frame may say 600."""
    fixed = []
    for template in sorted(TEMPLATES.glob("*.html")):
        source = re.sub(r"<!--\[if mso\]>.*?<!\[endif\]-->", "", template.read_text(), flags=re.S)
        for match in re.finditer(r'(?<![-\w])width(?:="|:\s*)(\d+)(?:px)?', source):
            if int(match.group(1)) > 320:
                fixed.append(f"{template.name}: {match.group(0)}")
    assert fixed == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("width", [390, 1366])
def test_the_invitation_opt_out_pages_fit_in_house_style(
    program, page, live_server, language, width
):
    """The link in an invitation asks, the button stops invitations; both pages in the
    invitation's language, without sideways scrolling."""
    from members.models import InvitationOptOut
    from members.services import invitation_opt_out_url

    invited = member_invite(email="uitgenodigd@example.com", language=language).member
    page.set_viewport_size({"width": width, "height": 800})
    SHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(invitation_opt_out_url(member=invited))
    assert page.locator("html").get_attribute("lang") == language
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(SHOTS / f"opt-out-ask-{language}-{width}.png"), full_page=True)
    assert not InvitationOptOut.objects.exists()

    page.locator("main button[type=submit]").click()
    page.wait_for_load_state()
    assert "uitgenodigd@example.com" in page.locator("main").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(SHOTS / f"opt-out-done-{language}-{width}.png"), full_page=True)
    assert InvitationOptOut.objects.filter(email="uitgenodigd@example.com").exists()
