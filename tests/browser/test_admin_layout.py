"""Every admin list and change page fits a 1366 px screen in Dutch and English: nothing scrolls
sideways, neither the page nor a result table inside it. Screenshots of each page go to
/tmp/briefs/shots/adminpolish/ to be looked at."""

import datetime as dt
import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from factory.django import DjangoModelFactory

from loyalty import demo
from loyalty.models import Tier, TierChange
from segmentation import services as segmentation_services
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
SHOTS = Path("/tmp/briefs/shots/adminpolish")
PASSWORD = "layout-check-2026!"

# Sideways overflow of the page, and of any element that scrolls itself (the admin puts the
# result table in a box with overflow-x: auto, so a too-wide table never widens the page).
OVERFLOW = """() => {
  const root = document.documentElement;
  const boxes = [...document.querySelectorAll('#changelist .results, .tabular, fieldset')]
    .filter((el) => el.scrollWidth > el.clientWidth + 1)
    .map((el) => `${el.id || el.className}: ${el.scrollWidth} > ${el.clientWidth}`);
  return {page: root.scrollWidth, window: window.innerWidth, boxes};
}"""


def _admin_data() -> None:
    """A small demo program, a segmentation run, and a row of each model the demo lacks."""
    demo.seed(demo.DemoSpec(members=40, now=NOW))
    segmentation_services.recalculate(now=NOW)
    model_factories = [
        value
        for value in vars(factories).values()
        if isinstance(value, type) and issubclass(value, DjangoModelFactory)
    ]
    for model in admin.site._registry:
        if model._default_manager.exists():
            continue
        for factory_class in model_factories:
            if factory_class._meta.get_model_class() is model:
                # The demo's tiers hold the ranks a new tier would take.
                fields = {"to_tier": Tier.objects.last()} if model is TierChange else {}
                factory_class.create(**fields)
                break


def _pages() -> list[tuple[str, str, str]]:
    """(name, list URL, change URL or '') of every model the admin lists."""
    pages = []
    for model in sorted(admin.site._registry, key=lambda m: (m._meta.app_label, m.__name__)):
        opts = model._meta
        name = f"{opts.app_label}-{opts.model_name}"
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        first = model._default_manager.order_by("pk").first()
        change = (
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(first.pk)])
            if first is not None
            else ""
        )
        pages.append((name, changelist, change))
    return pages


@pytest.fixture
def superuser(db):
    return factories.StaffUserFactory(
        email="admin@example.com", password=PASSWORD, is_superuser=True
    )


def _logged_in_page(browser, live_server, locale: str, width: int):
    context = browser.new_context(locale=locale, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin@example.com")
    page.fill("#id_password", PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    return context, page


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_admin_list_and_change_page_fits_1366_px(
    browser, live_server, superuser, settings, language
):
    settings.SITE_URL = live_server.url
    _admin_data()
    pages = _pages()
    SHOTS.mkdir(parents=True, exist_ok=True)
    locale = "nl-NL" if language == "nl" else "en-GB"
    context, page = _logged_in_page(browser, live_server, locale, 1366)
    too_wide = []
    try:
        for name, changelist, change in pages:
            for kind, url in (("list", changelist), ("change", change)):
                if not url:
                    continue
                response = page.goto(f"{live_server.url}{url}")
                assert response is not None and response.ok, (
                    f"{url}: {response and response.status}"
                )
                assert page.locator("html").get_attribute("lang") == language
                page.screenshot(path=SHOTS / f"{language}-1366-{name}-{kind}.png")
                width = page.evaluate(OVERFLOW)
                if width["page"] > width["window"] or width["boxes"]:
                    too_wide.append(f"{url}: {width}")
    finally:
        context.close()

    assert too_wide == [], "\n".join(too_wide)


MAIN_LISTS = ["members/member", "segmentation/segmentationrun", "rewards/reward"]
MAIN_LISTS += ["loyalty/ledgerentry"]


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_main_lists_at_phone_width(browser, live_server, superuser, settings, language):
    """At 390 px the admin's own responsive layout stacks the page; the result table scrolls
    in its box, never the page."""
    settings.SITE_URL = live_server.url
    demo.seed(demo.DemoSpec(members=20, now=NOW))
    segmentation_services.recalculate(now=NOW)
    SHOTS.mkdir(parents=True, exist_ok=True)
    locale = "nl-NL" if language == "nl" else "en-GB"
    context, page = _logged_in_page(browser, live_server, locale, 390)
    try:
        for path in MAIN_LISTS:
            page.goto(f"{live_server.url}/admin/{path}/")
            page.screenshot(path=SHOTS / f"{language}-390-{path.replace('/', '-')}-list.png")
            width = page.evaluate(OVERFLOW)
            assert width["page"] <= width["window"], f"{path}: {width}"
    finally:
        context.close()
