"""Results and uplift: the statistics against hand-computed examples, and the selector's counts
(conversions in the attribution window, net of refunds, per segment at send time, the chart)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns import results
from campaigns.models import CampaignSettings, RecipientStatus
from campaigns.selectors import ResultRow, campaign_results, campaign_results_cached
from tests.factories import (
    CampaignFactory,
    LedgerEntryFactory,
    MemberFactory,
    PurchaseFactory,
    RecipientFactory,
)


def test_conversion_uplift_against_a_hand_computed_newcombe_interval():
    """Recipients 60 of 400 converted (p1 = 0.15), the holdout 16 of 200 (p0 = 0.08); z = 1.96.

    Wilson, recipients: z²/n = 3.8416/400 = 0.009604;
      centre = (0.15 + 0.004802) / 1.009604 = 0.153329
      half = 1.96 / 1.009604 * sqrt(0.15 * 0.85 / 400 + 3.8416 / 640000)
           = 1.941355 * sqrt(0.00031875 + 0.000006) = 1.941355 * 0.018021 = 0.034985
      -> [0.118345, 0.188314]
    Wilson, holdout: z²/n = 0.019208;
      centre = (0.08 + 0.009604) / 1.019208 = 0.087915
      half = 1.96 / 1.019208 * sqrt(0.08 * 0.92 / 200 + 3.8416 / 160000)
           = 1.923061 * sqrt(0.000368 + 0.00002401) = 1.923061 * 0.019799 = 0.038075
      -> [0.049841, 0.125989]
    d = 0.15 - 0.08 = 0.07
    low  = 0.07 - sqrt((0.15 - 0.118345)² + (0.125989 - 0.08)²)
         = 0.07 - sqrt(0.0010020 + 0.0021150) = 0.07 - 0.055830 = 0.014170
    high = 0.07 + sqrt((0.188314 - 0.15)² + (0.08 - 0.049841)²)
         = 0.07 + sqrt(0.0014679 + 0.0009096) = 0.07 + 0.048760 = 0.118760
    The interval [0.0142, 0.1188] leaves out 0: recipients converted 7 points more."""
    interval = results.proportion_difference(60, 400, 16, 200)

    assert interval is not None
    assert interval.estimate == pytest.approx(0.07)
    assert interval.low == pytest.approx(0.014170, abs=2e-5)
    assert interval.high == pytest.approx(0.118760, abs=2e-5)
    assert interval.verdict == results.Verdict.MORE


def test_spend_uplift_against_a_hand_computed_welch_interval():
    """Recipients spent 0, 10, 20, 30, 40 (n 5, sum 100, squares 3000), the holdout 0, 0, 10, 10
    (n 4, sum 20, squares 200).

    means 20 and 5, d = 15; variances (3000 - 100²/5) / 4 = 250 and (200 - 20²/4) / 3 = 33.333
    a = 250 / 5 = 50, b = 33.333 / 4 = 8.3333, se = sqrt(58.3333) = 7.63763
    df = 58.3333² / (50² / 4 + 8.3333² / 3) = 3402.78 / (625 + 23.148) = 5.2500
    t(0.975, 5.25) = 2.53420 -> 15 ± 2.53420 * 7.63763 = 15 ± 19.3552 = [-4.3552, 34.3552]
    It holds 0: no measurable effect yet."""
    interval = results.mean_difference(results.Moments(5, 100, 3000), results.Moments(4, 20, 200))

    assert interval is not None
    assert interval.estimate == pytest.approx(15)
    assert interval.low == pytest.approx(-4.3552, abs=1e-3)
    assert interval.high == pytest.approx(34.3552, abs=1e-3)
    assert interval.holds_zero
    assert results.verdict(interval) == results.Verdict.NO_EFFECT


def test_less_and_too_few():
    fewer = results.proportion_difference(10, 1000, 60, 1000)
    assert fewer is not None and fewer.high < 0
    assert results.verdict(fewer) == results.Verdict.LESS
    assert results.verdict(results.proportion_difference(3, 10, 0, 0)) == results.Verdict.TOO_FEW
    assert (
        results.verdict(
            results.mean_difference(results.Moments(1, 5, 25), results.Moments(9, 9, 9))
        )
        == results.Verdict.TOO_FEW
    )
    # No conversions anywhere: Newcombe still gives an interval around 0 (Wald would give [0, 0]).
    nothing = results.proportion_difference(0, 50, 0, 10)
    assert nothing is not None and nothing.low < 0 < nothing.high


def _row(mailed, control):
    zero = dict.fromkeys(
        (
            "audience",
            "holdout",
            "sent",
            "failed",
            "skipped",
            "bounced",
            "opened",
            "clicked",
            "unsubscribed",
        ),
        0,
    )
    return ResultRow(segment="champions", mailed=mailed, control=control, **zero)


def test_verdict_texts(settings):
    from campaigns.selectors import Outcome

    settings.LANGUAGE_CODE = "en"
    more = _row(Outcome(400, 60, 0, 0), Outcome(200, 16, 0, 0))
    assert more.conversion_verdict == (
        "Recipients converted 7.0 percentage points more often than the holdout."
    )
    assert more.spend_verdict == "No measurable effect yet."  # nobody spent anything
    unclear = _row(Outcome(20, 5, 0, 0), Outcome(10, 0, 0, 0))
    assert unclear.conversion_verdict == "No measurable effect yet."
    spent = _row(Outcome(10, 10, 10 * 1000, 10 * 1000**2), Outcome(10, 0, 0, 0))
    assert spent.spend_verdict == "Recipients spent €10.00 more per member than the holdout."
    fewer = _row(Outcome(1000, 10, 0, 0), Outcome(1000, 60, 0, 0))
    assert fewer.conversion_verdict == (
        "Recipients converted 5.0 percentage points less often than the holdout."
    )
    # Fewer than 10 members in a group: no interval and no verdict (4 in a segment's holdout).
    small = _row(Outcome(45, 1, 0, 0), Outcome(4, 1, 0, 0))
    assert small.conversion_uplift is None and small.spend_uplift is None
    assert small.conversion_verdict == "Too few members in a group to compare yet."


@pytest.fixture
def sent_campaign(db, program):
    """A campaign that started 10 days ago: champions and loyal recipients, mailed 5 minutes
    after the start, and a holdout."""
    started = timezone.now() - dt.timedelta(days=10)
    campaign = CampaignFactory(status="sent", started_at=started, finished_at=started)
    return campaign, started


def _recipient(campaign, status, segment, sent_at=None, **fields):
    return RecipientFactory(
        campaign=campaign, status=status, segment=segment, sent_at=sent_at, **fields
    )


@pytest.mark.django_db
def test_results_count_conversions_in_the_window_net_of_refunds(sent_campaign):
    campaign, started = sent_campaign
    settings_row = CampaignSettings.load()
    settings_row.attribution_days = 7
    settings_row.save()
    sent_at = started + dt.timedelta(minutes=5)
    day = dt.timedelta(days=1)

    # Mailed champions: a buys twice (day 0 and day 2), b buys before the send only,
    # c buys after the window only, d buys and is wholly refunded, e opens and clicks.
    a = _recipient(campaign, RecipientStatus.SENT, "champions", sent_at, opened_at=sent_at)
    PurchaseFactory(
        member=a.member, amount=Decimal("30.00"), purchased_at=sent_at + dt.timedelta(hours=1)
    )
    PurchaseFactory(
        member=a.member,
        amount=Decimal("20.00"),
        purchased_at=sent_at + 2 * day,
        refunded_amount=Decimal("5.00"),
    )
    b = _recipient(campaign, RecipientStatus.SENT, "champions", sent_at)
    PurchaseFactory(member=b.member, purchased_at=sent_at - dt.timedelta(minutes=1))
    c = _recipient(campaign, RecipientStatus.SENT, "champions", sent_at)
    PurchaseFactory(member=c.member, purchased_at=sent_at + 7 * day)  # the window is [t0, t0 + 7d)
    d = _recipient(campaign, RecipientStatus.SENT, "champions", sent_at, bounced_at=sent_at)
    PurchaseFactory(
        member=d.member,
        amount=Decimal("10.00"),
        refunded_amount=Decimal("10.00"),
        purchased_at=sent_at + day,
    )
    _recipient(
        campaign,
        RecipientStatus.SENT,
        "champions",
        sent_at,
        opened_at=sent_at,
        clicked_at=sent_at,
        unsubscribed_at=sent_at,
    )
    # A loyal recipient who bought on day 3; a failed one who bought (not counted as mailed).
    f = _recipient(campaign, RecipientStatus.SENT, "loyal", sent_at)
    PurchaseFactory(member=f.member, amount=Decimal("40.00"), purchased_at=sent_at + 3 * day)
    g = _recipient(campaign, RecipientStatus.FAILED, "loyal")
    PurchaseFactory(member=g.member, purchased_at=sent_at + day)
    # Holdout: the window starts at the freeze (started); h buys 1 minute after the start
    # (before any mail went out: still counted, as for a recipient), i buys before the start.
    h = _recipient(campaign, RecipientStatus.HOLDOUT, "champions")
    PurchaseFactory(
        member=h.member, amount=Decimal("12.50"), purchased_at=started + dt.timedelta(minutes=1)
    )
    i = _recipient(campaign, RecipientStatus.HOLDOUT, "champions")
    PurchaseFactory(member=i.member, purchased_at=started - dt.timedelta(minutes=1))
    _recipient(campaign, RecipientStatus.HOLDOUT, "loyal")
    _recipient(campaign, RecipientStatus.SKIPPED, "loyal")
    # Another campaign's recipients and purchases by non-recipients change nothing.
    PurchaseFactory(member=MemberFactory(), purchased_at=sent_at + day)
    RecipientFactory(campaign=CampaignFactory(), member=a.member, status="sent", sent_at=sent_at)
    # Bonus points given by this campaign's offer (and one of another campaign).
    LedgerEntryFactory(
        kind="bonus",
        points=250,
        source="campaign",
        reason_key="Bonus: %(campaign)s",
        reason_params={"campaign": campaign.name, "campaign_id": campaign.pk},
    )
    LedgerEntryFactory(
        kind="bonus",
        points=999,
        source="campaign",
        reason_params={"campaign": "x", "campaign_id": campaign.pk + 1000},
    )

    with CaptureQueriesContext(connection) as queries:
        report = campaign_results(campaign=campaign)

    assert report is not None
    assert len(queries) <= 5  # settings, counts, buyers, bonus ledger, point value
    total = report.total
    assert (total.audience, total.holdout, total.sent, total.failed, total.skipped) == (
        11,
        3,
        6,
        1,
        1,
    )
    assert (total.bounced, total.opened, total.clicked, total.unsubscribed) == (1, 2, 1, 1)
    # Mailed: a (30 + 15 = 45.00) and f (40.00) converted; d's purchase was wholly refunded.
    assert (total.mailed.members, total.mailed.converted) == (6, 2)
    assert total.mailed.revenue == Decimal("85.00")
    assert total.mailed.spend_squares == 4500**2 + 4000**2
    assert (total.control.members, total.control.converted) == (3, 1)
    assert total.control.revenue == Decimal("12.50")
    assert total.mailed.spend_per_member == Decimal("14.17")
    by_segment = {row.segment: row for row in report.segments}
    assert [row.segment for row in report.segments] == ["champions", "loyal"]
    champions, loyal = by_segment["champions"], by_segment["loyal"]
    assert (champions.mailed.members, champions.mailed.converted) == (5, 1)
    assert (champions.control.members, champions.control.converted) == (2, 1)
    assert (loyal.mailed.members, loyal.mailed.converted, loyal.mailed.spend_cents) == (1, 1, 4000)
    assert (loyal.failed, loyal.skipped, loyal.control.members) == (1, 1, 1)
    assert (report.bonus_points, report.bonus_cost) == (250, Decimal("2.50"))
    # The chart: cumulative share converted per day since the send (first purchase counts).
    assert report.chart["days"] == [1, 2, 3, 4, 5, 6, 7]
    assert report.chart["mailed"] == [16.67, 16.67, 16.67, 33.33, 33.33, 33.33, 33.33]
    assert report.chart["holdout"] == [33.33] * 7
    assert total.conversion_uplift is None  # 6 and 3 members: too few to compare
    assert not report.window_open  # sent 10 days ago, 7-day window


@pytest.mark.django_db
def test_no_results_before_sending_starts(program):
    assert campaign_results(campaign=CampaignFactory()) is None


def _results_campaign(campaign_of, scored, **fields):
    """A sent campaign: 20 champions mailed an hour ago (5 bought), 10 in the holdout."""
    members = scored(30)
    started = timezone.now() - dt.timedelta(hours=1)
    campaign = campaign_of(status="sent", started_at=started, finished_at=started, **fields)
    for index, member in enumerate(members):
        status = RecipientStatus.HOLDOUT if index >= 20 else RecipientStatus.SENT
        RecipientFactory(
            campaign=campaign,
            member=member,
            status=status,
            segment="champions",
            sent_at=started if status == RecipientStatus.SENT else None,
        )
    for member in members[:5]:
        PurchaseFactory(member=member, amount=Decimal("25.00"), purchased_at=timezone.now())
    return campaign


@pytest.mark.django_db
def test_the_campaign_page_shows_its_results_with_chart_and_segments(
    admin_client, scored, campaign_of
):
    campaign = _results_campaign(campaign_of, scored)

    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    body = page.content.decode()
    assert 'id="campaign-results"' in body
    assert 'id="chart-conversions"' in body
    assert "vendor/chartjs/chart.umd.min.js" in body
    assert "25.0 %" in body and "5 of 20" in body  # recipients converted
    assert "0.0 %" in body and "0 of 10" in body  # the holdout
    assert "No measurable effect yet." in body
    assert 'data-segment="champions"' in body
    assert "The window is still open until" in body
    data = page.context["results"].chart
    assert data["mailed"][0] == 25.0 and data["holdout"][0] == 0.0
    assert data["mailed"][1:] == [None] * 13  # the days still to come


@pytest.mark.django_db
def test_a_draft_has_no_results(admin_client, scored, campaign_of):
    scored(2)
    campaign = campaign_of()

    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    assert 'id="campaign-results"' not in page.content.decode()


@pytest.mark.django_db
def test_the_comparison_lists_sent_campaigns_with_their_uplift(admin_client, scored, campaign_of):
    campaign = _results_campaign(campaign_of, scored, name="Spring champions")
    campaign_of(name="Still a draft")

    changelist = admin_client.get(reverse("admin:campaigns_campaign_changelist"))
    page = admin_client.get(reverse("admin:campaigns_campaign_compare"))

    assert reverse("admin:campaigns_campaign_compare") in changelist.content.decode()
    body = page.content.decode()
    assert f'data-campaign="{campaign.pk}"' in body
    assert "Spring champions" in body and "Still a draft" not in body
    assert "25.0 %" in body
    assert "No measurable effect yet." in body


@pytest.mark.django_db
def test_the_comparison_leaves_what_it_has_no_time_for_to_a_worker(
    admin_client, scored, campaign_of, monkeypatch
):
    from django.core.cache import cache

    from campaigns.admin import CampaignAdmin

    campaign = _results_campaign(campaign_of, scored, name="Spring champions")
    cache.clear()
    monkeypatch.setattr(CampaignAdmin, "COMPARE_BUDGET_SECONDS", 0.0)

    first = admin_client.get(reverse("admin:campaigns_campaign_compare")).content.decode()

    # No time to compute: the row says so, and the worker (eager here) computed it meanwhile.
    assert "The figures are being computed" in first and "25.0 %" not in first
    assert campaign_results_cached(campaign=campaign, compute=False) is not None
    second = admin_client.get(reverse("admin:campaigns_campaign_compare")).content.decode()
    assert "25.0 %" in second and "The figures are being computed" not in second


@pytest.mark.django_db
def test_duplicate_makes_a_draft_with_the_same_audience_recorded_with_the_user(
    client, staff_in, scored, campaign_of
):
    from campaigns.models import Campaign
    from loyalty.audit.models import AuditEntry
    from tests.factories import RuleSegmentFactory, TierFactory

    campaign = _results_campaign(
        campaign_of,
        scored,
        name="Spring",
        quadrants=["stars"],
        exclude_segments=["lost"],
        languages=["nl"],
        holdout_percent=20,
        exclude_redeemed_days=30,
    )
    rule = RuleSegmentFactory()
    tier = TierFactory()
    campaign.rule_segments.add(rule)
    campaign.tiers.add(tier)
    manager = staff_in("Program manager")
    client.force_login(manager)

    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert reverse("admin:campaigns_campaign_action", args=[campaign.pk, "duplicate"]) in (
        page.content.decode()
    )
    response = client.post(
        reverse("admin:campaigns_campaign_action", args=[campaign.pk, "duplicate"])
    )

    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:campaigns_campaign_change", args=[copy.pk])
    assert copy.status == "draft" and copy.started_at is None and copy.name == "Spring (copy)"
    assert (copy.message, copy.segments, copy.quadrants) == (
        campaign.message,
        ["champions"],
        ["stars"],
    )
    assert (copy.exclude_segments, copy.languages, copy.holdout_percent) == (["lost"], ["nl"], 20)
    assert copy.exclude_redeemed_days == 30
    assert list(copy.rule_segments.all()) == [rule] and list(copy.tiers.all()) == [tier]
    assert copy.created_by == manager
    assert not copy.recipients.exists()
    entry = AuditEntry.objects.get(object_id=str(copy.pk))
    assert entry.actor == manager


@pytest.mark.django_db
def test_a_support_agent_sees_results_but_no_buttons_and_is_refused_the_actions(
    client, staff_in, scored, campaign_of
):
    from campaigns.models import Campaign

    campaign = _results_campaign(campaign_of, scored)
    draft = campaign_of(name="Draft")
    client.force_login(staff_in("Support agent"))

    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    draft_page = client.get(reverse("admin:campaigns_campaign_change", args=[draft.pk]))
    compare = client.get(reverse("admin:campaigns_campaign_compare"))
    refused = [
        client.post(
            reverse("admin:campaigns_campaign_action", args=[target.pk, action])
        ).status_code
        for target, action in (
            (draft, "send_now"),
            (draft, "schedule"),
            (campaign, "pause"),
            (campaign, "resume"),
            (campaign, "cancel"),
            (campaign, "duplicate"),
        )
    ]

    assert page.status_code == 200 and compare.status_code == 200
    assert 'id="campaign-results"' in page.content.decode()
    assert 'class="campaign-actions"' not in page.content.decode()
    assert 'class="campaign-actions"' not in draft_page.content.decode()
    assert "/do/" not in page.content.decode() + draft_page.content.decode()
    assert refused == [403] * 6
    assert Campaign.objects.count() == 2
    draft.refresh_from_db()
    assert draft.status == "draft"
