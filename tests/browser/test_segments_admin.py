"""A program manager builds a rule segment and reads the segment dashboard, in a real browser."""

import datetime as dt
import re

import pytest

from loyalty import demo
from segmentation import services
from segmentation.models import MemberScore, RuleSegment
from tests.factories import StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def logged_in(page, live_server):
    StaffUserFactory(email="manager@example.com", password="segments-2026!", is_superuser=True)
    demo.seed(demo.DemoSpec(members=200, lines=False, now=NOW))
    run = services.recalculate(now=NOW)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "manager@example.com")
    page.fill("#id_password", "segments-2026!")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    return run


def test_the_rule_builder_writes_the_rule_and_counts_members_live(page, live_server, logged_in):
    page.goto(f"{live_server.url}/admin/segmentation/rulesegment/add/")
    page.fill("#id_name", "Champions and loyal")
    row = page.locator(".rule-row").first
    row.locator(".rule-field").select_option("segment")
    row.locator(".rule-op").select_option("in")
    row.locator("select.rule-input").select_option(["champions", "loyal"])
    page.get_by_role("button", name="Count members").click()

    expected = MemberScore.objects.filter(run=logged_in, segment__in=["champions", "loyal"]).count()
    page.get_by_text(f"{expected:,} members match").wait_for()  # en-GB grouping

    page.get_by_role("button", name="Add a condition").click()
    second = page.locator(".rule-row").nth(1)
    second.locator(".rule-field").select_option("spend")
    second.locator(".rule-op").select_option("gte")
    second.locator("input.rule-input").fill("50")
    second.locator(".rule-days").fill("180")
    second.locator(".rule-days").dispatch_event("change")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("was added successfully").wait_for()

    segment = RuleSegment.objects.get(name="Champions and loyal")
    assert segment.rule == {
        "all": [
            {"field": "segment", "op": "in", "value": ["champions", "loyal"]},
            {"field": "spend", "op": "gte", "value": 50, "days": 180},
        ]
    }


def test_an_invalid_rule_shows_the_error_from_the_live_count(page, live_server, logged_in):
    page.goto(f"{live_server.url}/admin/segmentation/rulesegment/add/")
    page.fill("#id_rule", '{"field": "clv", "op": "in", "value": 3}')
    page.get_by_role("button", name="Count members").click()

    page.locator("#rule-count-result.errornote").get_by_text("operator must be one of").wait_for()
    assert not RuleSegment.objects.exists()


def test_the_dashboard_draws_its_charts(page, live_server, logged_in):
    page.goto(f"{live_server.url}/admin/segmentation/segmentationrun/dashboard/")
    page.locator("#chart-segments").wait_for()

    drawn = page.evaluate(
        "['chart-segments', 'chart-clv', 'chart-alive'].map((id) => {"
        "  const chart = Chart.getChart(id);"
        "  return chart ? chart.data.datasets[0].data.reduce((a, b) => a + b, 0) : -1; })"
    )
    assert drawn[0] == logged_in.member_count
    assert drawn[1] > 0 and drawn[2] > 0
    assert page.locator(".matrix .quadrant").count() == 4
