"""Rewards in the back office: codes, imports, redemptions, voucher check, performance."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from loyalty.models import PointsAccount
from loyalty.services import points_credit
from rewards import codes, services
from rewards.models import CodeStatus, Redemption, RedemptionStatus, VoucherCode, VoucherImport
from tests.factories import MemberFactory, PartnerFactory, RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def redeemed(program):
    member = MemberFactory()
    points_credit(member=member, points=1000, reason="Welcome")
    reward = RewardFactory(points_cost=300, partner=PartnerFactory(name="Bioscoop"))
    services.codes_generate(reward=reward, count=2)
    return services.reward_redeem(member=member, reward=reward)


def test_codes_are_generated_from_the_reward_page(admin_client, program):
    reward = RewardFactory()
    url = reverse("admin:rewards_reward_generate_codes", args=[reward.pk])

    bad = admin_client.post(url, {"count": "0"})
    response = admin_client.post(url, {"count": "25"}, follow=True)

    assert "count" in bad.context["form"].errors
    assert b"25 codes added." in response.content
    assert reward.codes.count() == 25


def test_a_partner_csv_is_imported_with_a_row_report(
    admin_client, admin_user, program, django_capture_on_commit_callbacks
):
    reward = RewardFactory()
    VoucherCode.objects.create(reward=reward, code="KNOWN1")
    upload = SimpleUploadedFile(
        "codes.csv", b"code\nabc-123\n \nKNOWN1\nABC123\nxyz789\n", content_type="text/csv"
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:rewards_voucherimport_add"), {"reward": reward.pk, "file": upload}
        )

    job = VoucherImport.objects.get()
    assert response.status_code == 302
    assert job.status == "done" and job.created_by == admin_user
    assert set(reward.codes.values_list("code", flat=True)) == {"KNOWN1", "ABC123", "XYZ789"}
    assert [(error["row"], error["error"]) for error in job.errors] == [
        (3, "The code is empty."),
        (4, "The code already exists."),
        (5, "The code appears twice in the file."),
    ]
    page = admin_client.get(reverse("admin:rewards_voucherimport_change", args=[job.pk]))
    assert b"The code appears twice in the file." in page.content


def test_the_counter_checks_and_uses_a_voucher_once(admin_client, redeemed):
    url = reverse("admin:rewards_voucher_check")
    shown = codes.display(redeemed.code)

    check = admin_client.post(url, {"code": shown.lower()})
    assert check.context["redemption"] == redeemed and b"Mark as used" in check.content

    used = admin_client.post(url, {"code": shown, "use": "1"}, follow=True)
    assert b"The voucher is now marked as used." in used.content
    again = admin_client.post(url, {"code": shown, "use": "1"})
    assert "was used on" in str(again.context["form"].errors["code"])
    redeemed.refresh_from_db()
    assert redeemed.status == RedemptionStatus.USED


def test_the_cancel_action_returns_points_and_reports_refusals(admin_client, redeemed):
    product = services.reward_redeem(
        member=redeemed.member, reward=RewardFactory(kind="product", points_cost=100)
    )
    services.redemption_fulfil(redemption=product)

    response = admin_client.post(
        reverse("admin:rewards_redemption_changelist"),
        {"action": "cancel_selected", "_selected_action": [redeemed.pk, product.pk]},
        follow=True,
    )

    assert b"1 redemption(s) cancelled and their points returned." in response.content
    assert b"This redemption can no longer be cancelled." in response.content
    assert PointsAccount.objects.get(member=redeemed.member).balance == 900
    assert VoucherCode.objects.filter(status=CodeStatus.AVAILABLE).count() == 1
    assert VoucherCode.objects.get(code=redeemed.code).status == CodeStatus.VOID
    assert Redemption.objects.get(pk=product.pk).status == RedemptionStatus.FULFILLED


def test_reward_performance_shows_partners_and_a_chart(admin_client, redeemed):
    response = admin_client.get(reverse("admin:rewards_performance"))

    assert response.status_code == 200
    assert response.context["report"]["totals"]["Bioscoop"]["points"] == 300
    assert b"chart-performance" in response.content and b"chart.umd.min.js" in response.content


def test_the_reward_list_has_a_constant_number_of_queries(
    admin_client, program, django_assert_max_num_queries
):
    for _ in range(3):
        services.codes_generate(reward=RewardFactory(), count=3)
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("admin:rewards_reward_changelist")).status_code == 200
    for _ in range(10):
        services.codes_generate(reward=RewardFactory(), count=3)
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("admin:rewards_reward_changelist")).status_code == 200


def test_the_demo_commands_load_rewards_segments_and_redemptions(db):
    import datetime as dt

    from django.core.management import call_command

    from loyalty import demo
    from loyalty.models import EntryKind, LedgerEntry
    from members.models import FaqItem
    from rewards.models import Reward

    demo.seed(demo.DemoSpec(members=300, lines=False, now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
    call_command("demo_segments")
    call_command("demo_rewards")
    call_command("demo_rewards")  # a second run changes nothing

    assert Reward.objects.count() == 5 and FaqItem.objects.count() == 4
    redeemed = LedgerEntry.objects.filter(kind=EntryKind.REDEEM)
    assert 0 < Redemption.objects.count() == redeemed.count()
    assert Reward.objects.get(name_en="Early access to the sale").segments.exists()


def test_the_redemption_list_has_a_constant_number_of_queries(admin_client, redeemed):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert (
                admin_client.get(reverse("admin:rewards_redemption_changelist")).status_code == 200
            )
        return len(captured)

    queries()  # the configuration kept in memory (program settings) is read at the first page
    few = queries()
    for _ in range(5):
        member = MemberFactory()
        points_credit(member=member, points=500, reason="Welcome")
        services.reward_redeem(member=member, reward=RewardFactory(kind="product"))
    assert queries() == few


def test_the_admin_index_links_the_reward_performance(admin_client):
    response = admin_client.get(reverse("admin:index"))

    assert reverse("admin:rewards_performance").encode() in response.content
