"""A run whose CLV models did not fit: the run page warns, in Dutch and English, on a phone and
on a laptop."""

import datetime as dt
import re
from pathlib import Path

import pytest

from segmentation.models import RunStatus, SegmentationRun, SegmentationSettings
from tests.factories import StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/briefs/shots/clv")
NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
DEGENERATE = {
    "purchase_model": "mbgnbd",
    "mbgnbd": {"r": 1.345, "alpha": 66.77, "a": 0.1627, "b": 0.8055},
    "gamma_gamma": {"p": 2954326.2, "q": 1.763, "v": 1.838e-05},
    "warnings": [
        {"model": "gamma_gamma", "code": "not_converged"},
        {
            "model": "gamma_gamma",
            "code": "too_large",
            "parameter": "p",
            "value": 2954326.2,
            "limit": 100.0,
        },
    ],
}
TEXTS = {
    "en-GB": (
        "did not fit this run",
        "p\u00a0=\u00a02,954,326; q\u00a0=\u00a01.763; v\u00a0=\u00a00.00001838",
    ),
    "nl-NL": (
        "passen niet goed bij de gegevens",
        "p\u00a0=\u00a02.954.326; q\u00a0=\u00a01,763; v\u00a0=\u00a00,00001838",
    ),
}


@pytest.mark.parametrize("locale", ["en-GB", "nl-NL"])
@pytest.mark.parametrize("width", [390, 1366])
def test_the_run_page_warns_about_a_degenerate_fit(browser, live_server, locale, width):
    StaffUserFactory(email="manager@example.com", password="segments-2026!", is_superuser=True)
    run = SegmentationRun.objects.create(
        status=RunStatus.DONE,
        started_at=NOW - dt.timedelta(seconds=42),
        finished_at=NOW,
        stage="done",
        progress=100,
        member_count=300,
        parameters={"members": 300, "with_purchases": 240, "clv_parameters": DEGENERATE},
    )
    context = browser.new_context(locale=locale, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "manager@example.com")
        page.fill("#id_password", "segments-2026!")
        page.locator("input[type=submit]").click()
        page.wait_for_url(re.compile(r"/admin/$"))

        page.goto(f"{live_server.url}/admin/segmentation/segmentationrun/{run.pk}/change/")
        warning = page.get_by_role("alert")
        heading, fitted = TEXTS[locale]
        warning.get_by_text(heading).wait_for()

        assert fitted in warning.inner_text()
        assert warning.locator("li").count() == 2
        box = warning.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / f"run-warning-{locale}-{width}.png", full_page=False)
    finally:
        context.close()


@pytest.mark.parametrize("locale", ["en-GB", "nl-NL"])
def test_the_program_manager_chooses_the_purchase_model_in_the_settings(
    browser, live_server, locale
):
    StaffUserFactory(email="manager@example.com", password="segments-2026!", is_superuser=True)
    SegmentationSettings.load()
    context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "manager@example.com")
        page.fill("#id_password", "segments-2026!")
        page.locator("input[type=submit]").click()
        page.wait_for_url(re.compile(r"/admin/$"))

        page.goto(f"{live_server.url}/admin/segmentation/segmentationsettings/1/change/")
        choice = page.locator("#id_clv_purchase_model")
        assert choice.input_value() == "mbgnbd"
        help_text = page.locator("#id_clv_purchase_model_helptext")
        assert "MBG/NBD" in help_text.inner_text()
        choice.scroll_into_view_if_needed()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / f"settings-{locale}-1366.png")
        choice.select_option("bgnbd")
        page.locator("input[name=_save]").click()
        page.locator(".messagelist .success").wait_for()

        assert SegmentationSettings.load().clv_purchase_model == "bgnbd"
    finally:
        context.close()
