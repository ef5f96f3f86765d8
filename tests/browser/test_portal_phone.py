"""The member portal on a phone at the till (issue 17), in a real browser: every portal page at
390 px (touch, scale 2) and at 1280 px, in Dutch and English, without sideways scrolling and
without serious or critical axe-core violations (colour contrast and target size included);
the ledger and "my rewards" readable as cards; the compact menu; the language buttons; the
focus ring; and a redemption with the keyboard alone. Screenshots go to SHOTS for a person."""

import datetime as dt
import os
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

from loyalty.demo.generate import TIERS
from loyalty.services import points_credit, purchase_record
from loyalty.templatetags.loyalty_colours import contrast_ratio
from members.models import FaqItem, PrivacyStatement
from rewards import services
from rewards.models import Redemption
from tests.factories import (
    MemberFactory,
    PartnerFactory,
    RewardFactory,
    TermsVersionFactory,
    TierFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "stroopwafels-every-day-7"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SHOTS = Path(os.environ.get("PHONE_SHOTS", "/tmp/briefs/shots/phone"))
PHONE, DESKTOP = 390, 1280
VIEWS = [("nl", PHONE), ("en", PHONE), ("nl", DESKTOP), ("en", DESKTOP)]
MIN_TARGET = 44  # px: what a finger at the till needs (WCAG 2.5.5), more than AA's 24


@pytest.fixture
def open_page(browser, live_server, settings):
    """A new browser context: a touch phone (390 x 844, scale 2) or a desktop window."""
    settings.SITE_URL = live_server.url
    contexts = []

    def make(language: str, width: int, *, javascript: bool = True):
        phone = width < 720
        context = browser.new_context(
            locale="nl-NL" if language == "nl" else "en-GB",
            viewport={"width": width, "height": 844 if phone else 900},
            device_scale_factor=2 if phone else 1,
            is_mobile=phone,
            has_touch=phone,
            java_script_enabled=javascript,
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def world(program):
    """The demo's tiers, a partner with a long name, FAQ, privacy, terms and two rewards."""
    for name, rank, threshold, multiplier, colour in TIERS:
        TierFactory(name=name, rank=rank, threshold=threshold, multiplier=multiplier, color=colour)
    cinema = RewardFactory(name_en="Cinema ticket", name_nl="Bioscoopkaartje", points_cost=500)
    services.codes_generate(reward=cinema, count=10)
    RewardFactory(name_en="City trip for two", name_nl="Stedentrip voor twee", points_cost=500_000)
    FaqItem.objects.create(
        question_nl="Hoe spaar ik punten?",
        question_en="How do I collect points?",
        answer_nl="Laat bij elke aankoop je ledenpas scannen.",
        answer_en="Have your member card scanned with every purchase.",
    )
    PrivacyStatement.objects.create(version="1", body_nl="Privacy.", body_en="Privacy.")
    return SimpleNamespace(
        partner=PartnerFactory(name="Bakkerij en Banketbakkerij De Gouden Korenschoof"),
        cinema=cinema,
        terms=TermsVersionFactory(version="2026.1"),
    )


def gold_member(world, language: str) -> tuple:
    """A Gold member (spend over the demo's threshold) with two pages of history and a voucher."""
    email = f"noor-{language}@example.com"
    user = UserFactory(email=email, password=PASSWORD)
    member = MemberFactory(user=user, email=email, language=language, first_name="Noor")
    member.terms_acceptances.create(terms_version=world.terms)
    now = timezone.now()
    for number in range(30):
        purchase_record(
            partner=world.partner,
            external_id=f"{language}-{number}",
            member=member,
            amount=Decimal("61.45"),
            purchased_at=now - dt.timedelta(days=30 - number),
        )
    points_credit(member=member, points=2000, reason="Welcome bonus for new members of the club")
    redemption = services.reward_redeem(member=member, reward=world.cinema)
    return member, redemption


def log_in(page, live_server, member) -> None:
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("#id_username", member.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.get_by_test_id("balance").wait_for()


def shot(page, name: str, language: str, width: int) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{language}-{width}.png"), full_page=True)


def serious_violations(page) -> list[str]:
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + ", ".join(str(node["target"][0]) for node in violation["nodes"][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


SMALL_TARGETS = (
    """() => {
  const min = %d;
  const small = [];
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0
    && getComputedStyle(el).visibility !== 'hidden'; };
  for (const el of document.querySelectorAll('a, button, select, summary, input:not([type=hidden])')) {
    if (!visible(el) || el.closest('.skip-link')) continue;
    const r = el.getBoundingClientRect();
    if (el.type === 'checkbox' || el.type === 'radio') {
      // the box itself at least 24 px; with its label (which ticks it too) a 44 px row
      const row = el.closest('.field-checkbox') || el.parentElement;
      if (r.width < 24 || r.height < 24 || row.getBoundingClientRect().height < min)
        small.push(`${el.id || el.name}: ${Math.round(r.width)}x${Math.round(r.height)}`);
      continue;
    }
    // a link inside a sentence is exempt (WCAG 2.5.8 "inline"); one alone in its block is not
    const block = el.parentElement;
    const inline = el.tagName === 'A' && block
      && block.textContent.trim().length > el.textContent.trim().length;
    if (r.height < min && !inline)
      small.push(`${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 30)}": ${Math.round(r.height)}px`);
  }
  return small;
}"""
    % MIN_TARGET
)


def check_page(page, name: str, language: str, width: int) -> None:
    """The page is in the language, fits the screen, has 44 px targets on a phone, passes axe."""
    shot(page, name, language, width)
    assert page.locator("html").get_attribute("lang") == language, name
    sizes = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth]"
    )
    assert sizes[0] <= sizes[1] and sizes[2] <= sizes[1], (name, sizes)
    if width == PHONE:
        assert page.evaluate(SMALL_TARGETS) == [], name
    assert serious_violations(page) == [], name


@pytest.mark.parametrize(("language", "width"), VIEWS)
def test_every_portal_page_fits_the_screen_and_passes_axe(
    open_page, live_server, world, language, width
):
    member, redemption = gold_member(world, language)
    page = open_page(language, width)
    anonymous = {
        "login": "/portal/login/",
        "enrol": "/portal/enrol/",
        "enrol-sent": "/portal/enrol/sent/",
        "confirm-failed": "/portal/confirm/not-a-token/",
        "password-reset": "/portal/password/reset/",
        "password-reset-sent": "/portal/password/reset/sent/",
        "password-reset-invalid": "/portal/password/reset/MQ/not-a-token/",
        "faq": "/portal/faq/",
        "terms": "/portal/terms/",
        "privacy": "/portal/privacy/",
        "unsubscribe-invalid": "/portal/email/unsubscribe/not-a-token/",
        "not-found": "/portal/no-such-page/",
    }
    for name, path in anonymous.items():
        page.goto(live_server.url + path)
        check_page(page, f"anon-{name}", language, width)

    # A form sent empty shows its errors: those pages must pass too.
    page.goto(live_server.url + "/portal/enrol/")
    page.locator("main form button[type=submit]").click()
    page.locator("main .error").first.wait_for()
    check_page(page, "anon-enrol-errors", language, width)

    log_in(page, live_server, member)
    logged_in = {
        "dashboard": "/portal/",
        "history": "/portal/history/",
        "history-2": "/portal/history/?page=2",
        "catalogue": "/portal/rewards/",
        "confirm": f"/portal/rewards/{world.cinema.pk}/redeem/",
        "mine": "/portal/rewards/mine/",
        "voucher": f"/portal/rewards/mine/{redemption.pk}/",
        "account": "/portal/account/",
        "password-change": "/portal/account/password/",
        "erase": "/portal/account/erase/",
        "faq-member": "/portal/faq/",
    }
    for name, path in logged_in.items():
        page.goto(live_server.url + path)
        assert page.url.startswith(live_server.url + path.split("?")[0]), (name, page.url)
        check_page(page, name, language, width)

    # Consent: the account page after saving the choice, with its message.
    page.goto(live_server.url + "/portal/account/")
    page.locator("form[action$='/account/consent/'] input[type=checkbox]").first.check()
    page.locator("form[action$='/account/consent/'] button[type=submit]").click()
    page.locator(".messages").wait_for()
    check_page(page, "consent-saved", language, width)

    # The erase form sent without a password: its error.
    page.goto(live_server.url + "/portal/account/erase/")
    page.locator("main .button-danger").click()
    page.locator("main .error").first.wait_for()
    check_page(page, "erase-error", language, width)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_ledger_and_my_rewards_show_every_column_on_a_phone(
    open_page, live_server, world, language
):
    member, _ = gold_member(world, language)
    page = open_page(language, PHONE)
    log_in(page, live_server, member)

    for path in ("/portal/", "/portal/history/"):
        page.goto(live_server.url + path)
        rows = page.locator("table.ledger tbody tr")
        assert rows.count() >= 5
        for index in range(rows.count()):
            for cell in ("entry-date", "entry-kind", "entry-what", "entry-points", "entry-balance"):
                box = rows.nth(index).locator(f".{cell}").bounding_box()
                assert box and box["width"] > 0 and box["height"] > 0, (path, index, cell)
                assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE, (path, index, cell)
        first = rows.first
        balance_label = "Saldo" if language == "nl" else "Balance"
        assert balance_label in first.locator(".entry-balance").inner_text()
        # newest first: the redemption, then the welcome bonus, each with its points
        assert re.search(r"-500$", first.locator(".entry-points").inner_text())
        assert re.search(r"\+2[.,]000$", rows.nth(1).locator(".entry-points").inner_text())
        # no sideways scroll box (which a keyboard could not reach) around the entries
        scroll_boxes = page.evaluate(
            "() => [...document.querySelectorAll('main *')].filter(el =>"
            " ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)"
            " && el.scrollWidth > el.clientWidth + 1).map(el => el.className)"
        )
        assert scroll_boxes == [], path

    page.goto(live_server.url + "/portal/rewards/mine/")
    row = page.locator("table.redemptions tbody tr").first
    text = row.inner_text()
    assert ("Bioscoopkaartje" if language == "nl" else "Cinema ticket") in text
    assert "500" in text
    assert row.bounding_box()["width"] <= PHONE
    for cell in row.locator("td").all():
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE


def test_on_a_wide_screen_the_ledger_is_a_table_with_its_header(open_page, live_server, world):
    member, _ = gold_member(world, "en")
    page = open_page("en", DESKTOP)
    log_in(page, live_server, member)
    page.goto(live_server.url + "/portal/history/")
    header = page.locator("table.ledger thead")
    assert header.bounding_box()["height"] > 20  # visible, not only to screen readers
    assert page.get_by_role("columnheader", name="Balance").is_visible()
    cells = page.locator("table.ledger tbody tr").first.locator("td")
    tops = {round(cell.bounding_box()["y"]) for cell in cells.all()}
    assert len(tops) == 1  # one row, side by side


def _ring_contrast(page) -> dict:
    """The focused element's ring colours against the background around it."""
    return page.evaluate(
        """() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      let node = el.parentElement, background = 'rgb(255, 255, 255)';
      while (node) {
        const colour = getComputedStyle(node).backgroundColor;
        if (colour !== 'rgba(0, 0, 0, 0)' && colour !== 'transparent') { background = colour; break; }
        node = node.parentElement;
      }
      const shadow = (style.boxShadow.match(/rgba?\\([^)]*\\)/) || [''])[0];
      return {outline: style.outlineColor, outlineStyle: style.outlineStyle, shadow, background};
    }"""
    )


def _hex(rgb: str) -> str:
    red, green, blue = (int(part) for part in re.findall(r"\d+", rgb)[:3])
    return f"#{red:02x}{green:02x}{blue:02x}"


def test_the_gold_badge_and_the_focus_ring_have_enough_contrast(open_page, live_server, world):
    member, _ = gold_member(world, "en")
    page = open_page("en", DESKTOP)
    log_in(page, live_server, member)

    badge = page.locator(".tier-badge")
    assert badge.inner_text().strip() == "Gold"
    colours = badge.evaluate(
        "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
    )
    assert contrast_ratio(_hex(colours[0]), _hex(colours[1])) >= 4.5, colours

    # In the dark header and on a white card: one of the two rings stands out by 3:1.
    for selector in ("#main-nav a[href='/portal/history/']", "main a[href='/portal/history/']"):
        page.locator(selector).focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focus by keyboard: :focus-visible applies
        ring = _ring_contrast(page)
        assert ring["outlineStyle"] != "none" and ring["shadow"], ring
        best = max(
            contrast_ratio(_hex(ring["outline"]), _hex(ring["background"])),
            contrast_ratio(_hex(ring["shadow"]), _hex(ring["background"])),
        )
        assert best >= 3, (selector, ring)


@pytest.mark.parametrize(("width", "focused"), [(PHONE, "en"), (DESKTOP, "nl")])
def test_the_language_changes_only_on_an_explicit_choice_and_focus_stays_on_it(
    open_page, live_server, world, width, focused
):
    member, _ = gold_member(world, "en")
    page = open_page("en", width)
    log_in(page, live_server, member)
    page.goto(live_server.url + "/portal/history/")
    page.evaluate("() => { window.stillHere = true; }")

    page.locator(".language-button[value=nl]").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.wait_for_timeout(500)  # a select that submitted on change would have reloaded by now
    assert page.evaluate("() => window.stillHere === true")
    assert page.locator("html").get_attribute("lang") == "en"

    page.keyboard.press("Enter")
    page.locator("html[lang=nl]").wait_for(state="attached")
    page.get_by_role("heading", name="Puntengeschiedenis").wait_for()
    assert page.url.endswith("/portal/history/")
    # focus is back on the language control: on a phone only the other language shows
    assert page.evaluate("() => document.activeElement.className") == "language-button"
    assert page.evaluate("() => document.activeElement.value") == focused
    assert page.locator(".language-button[value=nl]").get_attribute("aria-current") == "true"
    assert page.locator(".language-button[value=nl]").is_visible() == (width == DESKTOP)


def test_on_a_phone_the_menu_folds_behind_a_button_and_works_without_javascript(
    open_page, live_server, world
):
    member, _ = gold_member(world, "nl")
    page = open_page("nl", PHONE)
    page.goto(f"{live_server.url}/portal/faq/")
    assert page.locator(".site-header").bounding_box()["height"] <= 80  # one row: log in, join
    log_in(page, live_server, member)

    header = page.locator(".site-header").bounding_box()
    assert header["height"] <= 80, header
    toggle = page.locator(".nav-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    history_link = page.locator("#main-nav a[href='/portal/history/']")
    assert not history_link.is_visible()
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert history_link.is_visible()
    assert history_link.bounding_box()["height"] >= MIN_TARGET
    history_link.focus()
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert page.evaluate("() => document.activeElement.classList.contains('nav-toggle')")
    shot(page, "menu-closed", "nl", PHONE)
    toggle.click()
    shot(page, "menu-open", "nl", PHONE)

    plain = open_page("nl", PHONE, javascript=False)
    log_in(plain, live_server, member)
    assert not plain.locator(".nav-toggle").is_visible()
    assert plain.locator("#main-nav a[href='/portal/history/']").is_visible()
    width = plain.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE
    shot(plain, "menu-without-javascript", "nl", PHONE)


def _tab_to(page, selector: str, limit: int = 60) -> None:
    """Press Tab until the focused element matches `selector`; each stop visibly focused."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        state = page.evaluate(
            """(selector) => {
          const el = document.activeElement;
          const r = el.getBoundingClientRect();
          const style = getComputedStyle(el);
          return {match: el.matches(selector), ring: style.boxShadow !== 'none',
                  onScreen: r.bottom > 0 && r.top < window.innerHeight && r.width > 0,
                  tag: el.tagName};
        }""",
            selector,
        )
        if state["tag"] != "BODY":
            assert state["ring"] and state["onScreen"], state
        if state["match"]:
            return
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize(("language", "width"), [("nl", PHONE), ("en", DESKTOP)])
def test_a_member_redeems_with_the_keyboard_alone(open_page, live_server, world, language, width):
    member, _ = gold_member(world, language)
    page = open_page(language, width)
    log_in(page, live_server, member)
    page.goto(live_server.url + "/portal/")
    page.locator("body").focus()

    if width == PHONE:
        _tab_to(page, ".nav-toggle")
        page.keyboard.press("Enter")
    _tab_to(page, "#main-nav a[href='/portal/rewards/']")
    page.keyboard.press("Enter")
    page.get_by_role(
        "heading", name="Beloningen" if language == "nl" else "Rewards"
    ).first.wait_for()

    _tab_to(page, f"a[href='/portal/rewards/{world.cinema.pk}/redeem/']")
    page.keyboard.press("Enter")
    page.locator("main form button[type=submit]").wait_for()
    _tab_to(page, "main form button[type=submit]")
    page.keyboard.press("Space")

    page.get_by_test_id("voucher-code").wait_for()
    assert Redemption.objects.filter(member=member).count() == 2
    shot(page, "voucher-after-keyboard", language, width)
