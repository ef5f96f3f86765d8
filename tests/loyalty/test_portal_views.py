"""The member's dashboard and points history."""

from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.services import points_credit, purchase_record
from members.models import MemberStatus
from tests.factories import MemberWithLoginFactory, PartnerFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read English texts; the product's default language is Dutch."""
    settings.LANGUAGE_CODE = "en"


PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def logged_in(client, program):
    member = MemberWithLoginFactory(first_name="Fleur", language="en")
    client.login(username=member.email, password=PASSWORD)
    return member


def test_the_dashboard_shows_balance_tier_and_progress(client, logged_in, program):
    TierFactory(name="Bronze", rank=1, threshold=Decimal("0"))
    TierFactory(name="Silver", rank=2, threshold=Decimal("500"))
    purchase_record(partner=PartnerFactory(), external_id="1", member=logged_in, amount="120.00")

    response = client.get(reverse("points:dashboard"), HTTP_ACCEPT_LANGUAGE="en")

    page = response.content.decode()
    assert response.context["balance"] == 120
    assert "Fleur" in page
    assert "Bronze" in page
    assert "380.00 more" in page and "Silver" in page
    assert response.context["progress"].percent == 24


def test_the_dashboard_needs_a_login(client, program):
    response = client.get(reverse("points:dashboard"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("members:login"))


def test_a_blocked_member_is_logged_out_with_a_message(client, logged_in):
    logged_in.status = MemberStatus.BLOCKED
    logged_in.save()

    response = client.get(reverse("points:dashboard"), follow=True, HTTP_ACCEPT_LANGUAGE="en")

    assert response.redirect_chain[-1][0] == reverse("members:login")
    assert "no active membership" in response.content.decode()


def test_the_history_is_paginated_newest_first(client, logged_in):
    for number in range(30):
        points_credit(member=logged_in, points=number + 1, reason=f"Bonus {number}")

    first = client.get(reverse("points:history"))
    second = client.get(reverse("points:history"), {"page": 2})

    assert [e.reason for e in first.context["page"].object_list][:2] == ["Bonus 29", "Bonus 28"]
    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 5


def test_the_history_costs_the_same_queries_for_few_or_many_entries(
    client, logged_in, django_assert_num_queries
):
    partner = PartnerFactory()
    purchase_record(partner=partner, external_id="a", member=logged_in, amount="10.00")
    client.get(reverse("points:history"))  # warm the program settings row
    with django_assert_num_queries(7) as few:  # incl. the current-terms check; settings cached
        client.get(reverse("points:history"))
    for number in range(24):
        purchase_record(partner=partner, external_id=f"b{number}", member=logged_in, amount="10.00")

    with django_assert_num_queries(len(few.captured_queries)):
        client.get(reverse("points:history"))
