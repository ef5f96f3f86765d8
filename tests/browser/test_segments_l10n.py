"""The segment dashboard and a run's page in Dutch and English at 1366 px: no sideways page
scroll, every RFM segment named on the chart's axis, the movement matrix's total column in view,
the run's parameters as labelled tables. Screenshots (also at 390 px) under
/tmp/briefs/shots/rfmbands/."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from loyalty import demo
from segmentation import services
from segmentation.models import Segment
from tests.factories import StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
SHOTS = Path("/tmp/briefs/shots/rfmbands")
LOCALES = {"nl": "nl-NL", "en": "en-GB"}


@pytest.fixture
def two_runs(db):
    StaffUserFactory(email="manager@example.com", password="segments-2026!", is_superuser=True)
    demo.seed(demo.DemoSpec(members=300, lines=False, now=NOW))
    services.recalculate(now=NOW - dt.timedelta(days=30))
    return services.recalculate(now=NOW)


def _page_in(browser, live_server, language: str, width: int):
    context = browser.new_context(
        locale=LOCALES[language],
        extra_http_headers={"Accept-Language": LOCALES[language]},
        viewport={"width": width, "height": 900},
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "manager@example.com")
    page.fill("#id_password", "segments-2026!")
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    return context, page


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_dashboard_names_every_segment_and_fits_1366_px(
    browser, live_server, settings, two_runs, language
):
    settings.SITE_URL = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page = _page_in(browser, live_server, language, 1366)
    try:
        page.goto(f"{live_server.url}/admin/segmentation/segmentationrun/dashboard/")
        page.locator("#chart-segments").wait_for()
        page.wait_for_function("Chart.getChart('chart-segments') !== undefined")
        page.screenshot(path=SHOTS / f"dashboard-{language}-1366.png", full_page=True)

        assert _no_sideways_scroll(page)
        axis = page.evaluate(
            "(() => { const chart = Chart.getChart('chart-segments');"
            " return {labels: chart.data.labels,"
            " drawn: chart.scales.x.getLabelItems().map((item) => item.label)}; })()"
        )
        assert len(axis["labels"]) == len(Segment)
        assert axis["drawn"] == axis["labels"]  # none skipped
        # The movement matrix's total column is on screen, inside its card.
        total = page.locator("#movement thead th").last.bounding_box()
        card = page.locator("#movement").bounding_box()
        assert total["x"] + total["width"] <= card["x"] + card["width"] <= 1366
        if language == "nl":
            assert "Kampioenen" in axis["labels"]
            assert page.locator("#movement thead th").last.text_content() == "Totaal"
    finally:
        context.close()


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_run_page_shows_labelled_parameters_and_fits_1366_px(
    browser, live_server, settings, two_runs, language
):
    settings.SITE_URL = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page = _page_in(browser, live_server, language, 1366)
    try:
        page.goto(f"{live_server.url}/admin/segmentation/segmentationrun/{two_runs.pk}/change/")
        page.locator("#run-counts").wait_for()
        page.screenshot(path=SHOTS / f"run-{language}-1366.png", full_page=True)

        assert _no_sideways_scroll(page)
        stage = page.locator(".field-stage .readonly").inner_text()
        assert stage == {"nl": "Klaar", "en": "Done"}[language]
        members = page.locator("#run-counts tr").first
        expected = f"{two_runs.member_count}"
        assert members.locator("td").inner_text() == expected
        assert page.locator("pre").count() == 0
        labels = page.locator("table.run-parameters th").all_inner_texts()
        assert labels and not any("_" in label for label in labels)  # no raw keys
    finally:
        context.close()


@pytest.mark.parametrize("language", ["nl", "en"])
def test_screenshots_at_390_px(browser, live_server, settings, two_runs, language):
    """At phone width too every segment is named and the cards scroll inside themselves."""
    settings.SITE_URL = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page = _page_in(browser, live_server, language, 390)
    try:
        page.goto(f"{live_server.url}/admin/segmentation/segmentationrun/dashboard/")
        page.wait_for_function("Chart.getChart('chart-segments') !== undefined")
        page.screenshot(path=SHOTS / f"dashboard-{language}-390.png", full_page=True)
        drawn = page.evaluate("Chart.getChart('chart-segments').scales.x.getLabelItems().length")
        assert drawn == len(Segment)
        assert _no_sideways_scroll(page)
        page.goto(f"{live_server.url}/admin/segmentation/segmentationrun/{two_runs.pk}/change/")
        page.locator("#run-counts").wait_for()
        page.screenshot(path=SHOTS / f"run-{language}-390.png", full_page=True)
        assert _no_sideways_scroll(page)
    finally:
        context.close()


def test_the_run_page_follows_a_running_run_in_the_viewers_language(
    browser, live_server, settings, db
):
    from django.utils import translation

    from segmentation.models import RunStage, RunStatus, SegmentationRun

    settings.SITE_URL = live_server.url
    StaffUserFactory(email="manager@example.com", password="segments-2026!", is_superuser=True)
    with translation.override("en"):  # started by someone reading English
        run = services.run_start()
    context, page = _page_in(browser, live_server, "nl", 1366)
    try:
        page.goto(f"{live_server.url}/admin/segmentation/segmentationrun/{run.pk}/change/")
        assert page.locator(".field-stage .readonly").inner_text() == "In de wachtrij"

        SegmentationRun.objects.filter(pk=run.pk).update(stage=RunStage.SCORING, progress=30)
        page.locator(".field-stage .readonly").get_by_text("Scoren").wait_for()
        assert page.locator(".field-progress_bar progress").get_attribute("value") == "30"

        SegmentationRun.objects.filter(pk=run.pk).update(
            status=RunStatus.FAILED, stage=RunStage.WRITING
        )
        # A finished run: the page reloads itself and stops polling.
        page.locator(".field-status .readonly").get_by_text("Mislukt").wait_for()
        assert page.locator("#run-progress-config").count() == 0
    finally:
        context.close()
