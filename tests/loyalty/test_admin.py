"""The program core's back office: adjustments, refunds, the read-only ledger, the dry run."""

from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.models import (
    ConsistencyCheck,
    LedgerEntry,
    PointsAccount,
    ProgramSettings,
    Purchase,
    Refund,
)
from loyalty.services import points_credit, purchase_record
from tests.factories import EarningRuleFactory, PartnerFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read English texts; the product's default language is Dutch."""
    settings.LANGUAGE_CODE = "en"


def balance(member) -> int:
    return PointsAccount.objects.get(member=member).balance


def test_adjusting_points_writes_one_audited_entry(admin_client, admin_user, program, member):
    points_credit(member=member, points=10, reason="Welcome")

    response = admin_client.post(
        reverse("admin:members_member_adjust_points", args=[member.pk]),
        {"points": "25", "reason": "Compensation for a late delivery"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse(
        "admin:members_member_change", args=[member.pk]
    )
    entry = LedgerEntry.objects.get(kind="adjust")
    assert (entry.points, entry.created_by, entry.reason) == (
        25,
        admin_user,
        "Compensation for a late delivery",
    )
    assert balance(member) == 35


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"points": "5", "reason": ""}, "reason"),
        ({"points": "0", "reason": "Nothing"}, "points"),
        ({"points": "-11", "reason": "Correction"}, None),
    ],
)
def test_a_bad_adjustment_shows_the_error_and_writes_nothing(
    admin_client, program, member, data, field
):
    points_credit(member=member, points=10, reason="Welcome")

    response = admin_client.post(
        reverse("admin:members_member_adjust_points", args=[member.pk]), data
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert (field or "__all__") in form.errors
    assert LedgerEntry.objects.count() == 1
    assert balance(member) == 10


def test_refunding_from_the_admin_reverses_points(admin_client, program, member):
    purchase = purchase_record(
        partner=PartnerFactory(), external_id="R1", member=member, amount="80.00"
    ).purchase

    response = admin_client.post(
        reverse("admin:loyalty_purchase_refund", args=[purchase.pk]),
        {"amount": "20.00", "external_id": ""},
    )

    assert response.status_code == 302
    assert Refund.objects.get().points_reversed == 20
    assert balance(member) == 60


def test_a_refund_larger_than_the_purchase_is_refused_in_the_admin(admin_client, program, member):
    purchase = purchase_record(
        partner=PartnerFactory(), external_id="R2", member=member, amount="30.00"
    ).purchase

    response = admin_client.post(
        reverse("admin:loyalty_purchase_refund", args=[purchase.pk]),
        {"amount": "30.01"},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 200
    assert "30.00" in " ".join(response.context["form"].errors["amount"])
    assert Refund.objects.count() == 0
    purchase.refresh_from_db()
    assert purchase.refunded_amount == 0


def test_the_ledger_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, program, member):
    entry = points_credit(member=member, points=10, reason="Welcome")

    add = admin_client.get(reverse("admin:loyalty_ledgerentry_add"))
    change = admin_client.post(
        reverse("admin:loyalty_ledgerentry_change", args=[entry.pk]), {"points": "999"}
    )
    delete = admin_client.post(
        reverse("admin:loyalty_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
    )

    assert add.status_code == 403
    assert delete.status_code == 403
    assert change.status_code in (403, 200)  # view-only page at most
    entry.refresh_from_db()
    assert entry.points == 10


def test_purchases_cannot_be_created_in_the_admin(admin_client, program):
    assert admin_client.get(reverse("admin:loyalty_purchase_add")).status_code == 403


def test_the_earning_dry_run_shows_the_breakdown_and_writes_nothing(admin_client, program):
    gold = TierFactory(name="Gold", rank=3, multiplier=Decimal("1.5"))
    EarningRuleFactory(name="Green", product_category="duurzaam", multiplier=Decimal("2"))

    response = admin_client.post(
        reverse("admin:loyalty_earningrule_dry_run"),
        {
            "tier": gold.pk,
            "channel": "store",
            "amount": "30.00",
            "lines": "duurzaam=10.00\nfood=20.00",
            "at": "",
        },
    )

    breakdown = response.context["breakdown"]
    assert breakdown.points == 60  # (10 x 2 + 20) x 1.5
    assert [line.rule for line in breakdown.lines] == ["Green", None]
    assert Purchase.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


def test_dry_run_lines_that_do_not_add_up_are_a_form_error(admin_client, program):
    response = admin_client.post(
        reverse("admin:loyalty_earningrule_dry_run"),
        {"channel": "store", "amount": "30.00", "lines": "a=10.00", "at": ""},
    )

    assert "lines" in response.context["form"].errors
    assert response.context["breakdown"] is None


def test_program_settings_is_a_single_row(admin_client, program):
    response = admin_client.get(reverse("admin:loyalty_programsettings_changelist"))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:loyalty_programsettings_change", args=[1])
    assert admin_client.get(reverse("admin:loyalty_programsettings_add")).status_code == 403
    assert ProgramSettings.objects.count() == 1


def test_running_the_consistency_check_from_the_admin(admin_client, program, member):
    points_credit(member=member, points=10, reason="Welcome")
    PointsAccount.objects.update(balance=11)

    response = admin_client.post(
        reverse("admin:loyalty_consistencycheck_run"), follow=True, HTTP_ACCEPT_LANGUAGE="en"
    )

    check = ConsistencyCheck.objects.get()
    assert check.mismatch_count == 2
    assert any("differ" in str(m) for m in response.context["messages"])
    assert PointsAccount.objects.get().balance == 11


def test_the_dry_run_checks_each_line_as_a_purchase_does(admin_client, program):
    response = admin_client.post(
        reverse("admin:loyalty_earningrule_dry_run"),
        {"channel": "store", "amount": "10.00", "lines": f"{'a' * 300}=10.00", "at": ""},
    )

    assert "lines" in response.context["form"].errors
    assert response.context["breakdown"] is None


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "nl",
            ["€\u00a01.030,50", "&times;2", "3.091,50", "772,50", "(&times;1,5)", "<b>3.864</b>"],
        ),
        ("en", ["€1,030.50", "&times;2", "3,091.50", "772.50", "(&times;1.5)", "<b>3,864</b>"]),
    ],
)
def test_the_purchase_page_shows_its_breakdown_in_the_readers_number_format(
    admin_client, program, member, language, expected
):
    gold = TierFactory(name="Gold", rank=1, threshold=Decimal("0"), multiplier=Decimal("1.5"))
    EarningRuleFactory(name="Green", product_category="duurzaam", multiplier=Decimal("2"))
    result = purchase_record(
        partner=PartnerFactory(),
        external_id="B1",
        member=member,
        amount="1545.50",
        lines=[{"amount": "1030.50", "category": "duurzaam"}, {"amount": "515.00"}],
    )
    assert result.tier == gold.name

    page = admin_client.get(
        reverse("admin:loyalty_purchase_change", args=[result.purchase.pk]),
        HTTP_ACCEPT_LANGUAGE=language,
    ).content.decode()

    for text in expected:  # 1030.50 x 2 x 1.5 = 3091.50 and 515 x 1.5 = 772.50: 3864 points
        assert text in page
    assert "1030.500000" not in page and "1.500000" not in page
