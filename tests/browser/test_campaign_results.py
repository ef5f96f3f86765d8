"""A program manager creates a message and a campaign for a segment in the admin, previews the
message, sends the campaign with the button and sees its results with the chart: Dutch and
English; screenshots at laptop and phone width."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.models import Campaign, RecipientStatus
from campaigns.tasks import results_refresh
from tests.factories import (
    ConsentRecordFactory,
    MemberFactory,
    MemberScoreFactory,
    PurchaseFactory,
    SegmentationRunFactory,
    StaffUserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/briefs/shots/results")
PASSWORD = "results-2026!"
SEND_NOW = re.compile("^(Send now|Nu versturen)$")


def _login(browser, live_server, language: str, width: int):
    context = browser.new_context(
        locale="nl-NL" if language == "nl" else "en-GB",
        viewport={"width": width, "height": 900},
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "pm@club.example")
    page.fill("#id_password", PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    return context, page


@pytest.mark.parametrize("language", ["en", "nl"])
def test_create_preview_send_and_see_the_results(browser, live_server, program, settings, language):
    settings.SITE_URL = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    run = SegmentationRunFactory(is_current=True)
    members = MemberFactory.create_batch(40, language=language)
    for member in members:
        MemberScoreFactory(run=run, member=member, segment="loyal")
        ConsentRecordFactory(member=member, channel="email", granted=True)
    others = MemberFactory.create_batch(3, language=language)
    for member in others:
        MemberScoreFactory(run=run, member=member, segment="lost")
        ConsentRecordFactory(member=member, channel="email", granted=True)
    StaffUserFactory(email="pm@club.example", password=PASSWORD, is_superuser=True)

    context, page = _login(browser, live_server, language, 1366)
    # A message in both languages.
    page.goto(f"{live_server.url}/admin/campaigns/message/add/")
    page.fill("#id_name", f"Zomer {language}")
    for code, hello in (("nl", "Hoi"), ("en", "Hi")):
        page.fill(f"#id_subject_{code}", f"{hello} {{{{ member.first_name }}}}")
        page.fill(f"#id_html_{code}", f"<p>{hello} {{{{ member.first_name }}}}</p>")
        page.fill(f"#id_text_{code}", f"{hello} {{{{ member.first_name }}}}")
    page.locator("input[name=_save]").click()
    page.wait_for_url(re.compile(r"/admin/campaigns/message/$"))

    # A campaign for the loyal segment, the message chosen in the autocomplete.
    page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
    page.fill("#id_name", "Loyal summer")
    page.locator("#id_message + .select2 .select2-selection").click()
    page.locator(".select2-search__field").fill("Zomer")
    page.locator(".select2-results__option", has_text=f"Zomer {language}").click()
    page.locator("input[name=segments][value=loyal]").check()
    page.fill("#id_holdout_percent", "25")
    page.locator("input[name=_continue]").click()
    page.wait_for_url(re.compile(r"/admin/campaigns/campaign/\d+/change/$"))
    campaign = Campaign.objects.get()
    assert campaign.segments == ["loyal"] and campaign.message.name == f"Zomer {language}"
    assert page.locator(".field-audience_text").inner_text().count("40") == 1

    # Preview the message from the campaign page.
    page.locator(".object-tools a", has_text=re.compile("Preview|Voorbeeld")).click()
    page.wait_for_selector("iframe")
    greeting = "Hoi" if language == "nl" else "Hi"
    assert greeting in page.frame_locator("iframe").locator("body").inner_text()
    page.screenshot(path=SHOTS / f"preview-{language}-1366.png", full_page=True)

    # Send now: the audience is frozen, 10 in the holdout, 30 mailed (eager workers).
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    page.locator(".campaign-actions button", has_text=SEND_NOW).click()
    page.wait_for_selector("progress[value='100']")
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    recipients = campaign.recipients.all()
    mailed = [r.member_id for r in recipients if r.status == RecipientStatus.SENT]
    held = [r.member_id for r in recipients if r.status == RecipientStatus.HOLDOUT]
    assert (len(mailed), len(held)) == (30, 10)
    assert not {m.pk for m in others} & {r.member_id for r in recipients}

    # Purchases after the send: 12 of 30 recipients, 1 of 10 in the holdout.
    for member_id in mailed[:12] + held[:1]:
        PurchaseFactory(member_id=member_id, amount=Decimal("30.00"), purchased_at=timezone.now())
    # The page reads the results from the cache: the beat task recomputes them (every 10
    # minutes while the window is open), as it would have by the manager's next look.
    assert results_refresh() >= 1
    page.reload()
    results = page.locator("#campaign-results")
    results.wait_for()
    assert re.search("Results|Resultaten", results.locator("h2").inner_text())
    uplift = results.locator("tr[data-uplift=conversion]").inner_text()
    assert ("40.0 %" if language == "en" else "40,0 %") in uplift
    assert ("10.0 %" if language == "en" else "10,0 %") in uplift
    assert results.locator("tr[data-segment=loyal]").count() == 1
    drawn = page.evaluate(
        "() => { const c = document.getElementById('chart-conversions');"
        " return !!Chart.getChart(c) && c.width > 0 && c.height > 0; }"
    )
    assert drawn
    page.wait_for_timeout(1500)  # the chart's animation, before the screenshot
    page.screenshot(path=SHOTS / f"results-{language}-1366.png", full_page=True)
    context.close()

    context, page = _login(browser, live_server, language, 390)
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    page.locator("#campaign-results").wait_for()
    page.locator("#campaign-results").scroll_into_view_if_needed()
    page.wait_for_timeout(1500)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390 + 1
    page.screenshot(path=SHOTS / f"results-{language}-390.png", full_page=True)
    page.goto(f"{live_server.url}/admin/campaigns/campaign/compare/")
    page.locator(f"tr[data-campaign='{campaign.pk}']").wait_for()
    page.screenshot(path=SHOTS / f"compare-{language}-390.png", full_page=True)
    context.close()

    context, page = _login(browser, live_server, language, 1366)
    page.goto(f"{live_server.url}/admin/campaigns/campaign/")
    page.locator(
        ".object-tools a", has_text=re.compile("Compare campaigns|Campagnes vergelijken")
    ).click()
    page.locator(f"tr[data-campaign='{campaign.pk}']").wait_for()
    page.screenshot(path=SHOTS / f"compare-{language}-1366.png", full_page=True)
    context.close()
