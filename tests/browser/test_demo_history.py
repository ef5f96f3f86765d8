"""A program manager opens the demo: a purchase shows how its points were computed, and the
reward performance page counts the redemptions the members' ledgers show, in a real browser."""

import io
import re

import pytest
from django.core.management import call_command
from django.db.models import Sum

from loyalty import demo
from loyalty.models import Purchase
from rewards.models import Redemption
from tests.factories import StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/briefs/shots/demo"


@pytest.fixture
def demo_admin(page, live_server):
    StaffUserFactory(email="manager@example.com", password="demo-history-2026!", is_superuser=True)
    demo.seed(demo.DemoSpec(members=200))  # now: the performance page counts back from today
    call_command("demo_rewards", stdout=io.StringIO())
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "manager@example.com")
    page.fill("#id_password", "demo-history-2026!")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))


def test_a_demo_purchase_shows_how_its_points_were_computed(page, live_server, demo_admin):
    purchase = Purchase.objects.filter(lines__category="duurzaam").order_by("pk").first()
    breakdown = purchase.earning_breakdown

    page.goto(f"{live_server.url}/admin/loyalty/purchase/{purchase.pk}/change/")

    field = page.locator(".field-breakdown")
    rows = field.locator("tbody tr")
    assert rows.count() == len(breakdown["lines"]) == purchase.lines.count()
    assert "Dubbele punten op duurzaam" in field.inner_text()
    summary = field.locator("p").inner_text()
    assert f"tier: {breakdown['tier']} (×{breakdown['tier_multiplier']})" in summary  # noqa: RUF001
    assert summary.endswith(f"total (rounded down): {purchase.points_earned:,}")
    page.screenshot(path=f"{SHOTS}/test-purchase-en-1200.png", full_page=True)


def test_the_reward_performance_page_counts_every_redemption_of_the_ledgers(
    page, live_server, demo_admin
):
    page.goto(f"{live_server.url}/admin/rewards/redemption/performance/")

    table = page.locator("table").first.inner_text()
    recent = Redemption.objects.filter(created_at__date__gte=_first_month())
    for partner, count, points in _per_partner(recent):
        assert re.search(rf"{re.escape(partner)}\s+{count}\s+{points:,}", table), table
    page.screenshot(path=f"{SHOTS}/test-performance-en-1200.png", full_page=True)


def _first_month():
    from dateutil.relativedelta import relativedelta
    from django.utils import timezone

    return timezone.localdate().replace(day=1) - relativedelta(months=11)


def _per_partner(redemptions):
    rows = (
        redemptions.values("reward__partner__name")
        .annotate(points=Sum("points"))
        .order_by("reward__partner__name")
    )
    for row in rows:
        partner = row["reward__partner__name"]
        count = redemptions.filter(reward__partner__name=partner).count()
        yield partner or "Program", count, row["points"]
