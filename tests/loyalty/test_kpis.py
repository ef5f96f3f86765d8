"""The KPI page: figures from known data, against the program's targets, with charts."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from loyalty.kpis import program_kpis
from loyalty.services import points_credit, points_debit, points_expire, purchase_record
from tests.factories import MemberFactory, PartnerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read English texts; the product's default language is Dutch."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def activity(program):
    program.target_active_members = 2
    program.target_purchases_per_member = Decimal("2.00")
    program.target_spend_per_member = Decimal("100.00")
    program.target_redemption_rate = Decimal("10.00")
    program.point_value_eur = Decimal("0.0100")
    program.points_expiry_months = 12
    program.save()
    partner = PartnerFactory()
    anna, bert, lapsed = MemberFactory(), MemberFactory(), MemberFactory()
    with time_machine.travel(timezone.now() - dt.timedelta(days=500)):
        purchase_record(partner=partner, external_id="old", member=lapsed, amount="300.00")
    purchase_record(partner=partner, external_id="a1", member=anna, amount="100.00")
    purchase_record(partner=partner, external_id="a2", member=anna, amount="50.00")
    purchase_record(partner=partner, external_id="b1", member=bert, amount="30.00")
    points_debit(member=anna, points=45, reason="Reward")
    points_credit(member=bert, points=20, reason="Birthday bonus")
    points_expire()  # lapsed's 300 points from 500 days ago
    return program


def test_the_kpis_are_computed_from_the_last_twelve_months(activity):
    report = program_kpis()
    kpis = {kpi.key: kpi for kpi in report.kpis}

    assert kpis["active_members"].value == 2
    assert kpis["purchases_per_member"].value == Decimal("1.50")
    assert kpis["spend_per_member"].value == Decimal("90.00")
    assert kpis["points_issued"].value == 200  # 180 earned + 20 bonus
    assert kpis["points_redeemed"].value == 45
    assert kpis["points_expired"].value == 300
    assert kpis["redemption_rate"].value == Decimal("22.5")
    assert kpis["liability"].value == Decimal("1.55")  # 155 points x 0.01
    assert kpis["active_members"].met is True
    assert kpis["purchases_per_member"].met is False
    assert kpis["redemption_rate"].met is True


def test_the_monthly_series_cover_twelve_months_ending_now(activity):
    report = program_kpis()

    assert len(report.months) == 12
    assert report.months[-1] == timezone.localtime().strftime("%Y-%m")
    assert report.points_issued[-1] == 200
    assert report.points_redeemed[-1] == 45
    assert report.active_members[-1] == 2
    assert report.spend[-1] == 180.0


def test_the_kpi_page_renders_charts_in_a_constant_number_of_queries(admin_client, activity):
    url = reverse("admin:kpis")
    admin_client.get(url)
    with CaptureQueriesContext(connection) as before:
        first = admin_client.get(url)
    partner = PartnerFactory(name="More")
    for number in range(20):
        purchase_record(
            partner=partner, external_id=f"m{number}", member=MemberFactory(), amount="10.00"
        )

    with CaptureQueriesContext(connection) as after:
        second = admin_client.get(url)

    assert len(after.captured_queries) == len(before.captured_queries)
    assert first.status_code == second.status_code == 200
    page = second.content.decode()
    assert "vendor/chartjs/chart.umd.min.js" in page
    assert 'id="kpi-data"' in page and 'id="chart-points"' in page


def test_the_admin_index_links_to_the_kpis(admin_client, program):
    response = admin_client.get(reverse("admin:index"))

    assert reverse("admin:kpis").encode() in response.content
