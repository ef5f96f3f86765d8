"""Segmentation in the back office: runs, recalculate now, rule segments, dashboard, exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from loyalty import demo
from members.models import Member
from segmentation import services
from segmentation.admin import STAGE_LABELS
from segmentation.models import (
    MemberScore,
    Quadrant,
    RuleSegment,
    RunStatus,
    Segment,
    SegmentationRun,
)
from tests.factories import MemberFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read English texts; the product's default language is Dutch."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def scored(db):
    demo.seed(demo.DemoSpec(members=300, lines=False, now=NOW))
    return services.recalculate(now=NOW)


def _client_in(client, group: str):
    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return client


def test_recalculate_now_runs_the_task_and_shows_the_run(
    admin_client, scored, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:segmentation_segmentationrun_recalculate"), follow=True
        )

    run = SegmentationRun.objects.latest()
    assert run != scored
    assert response.redirect_chain[-1][0] == reverse(
        "admin:segmentation_segmentationrun_change", args=[run.pk]
    )
    assert b"The recalculation has started" in response.content
    assert run.status == RunStatus.DONE and run.is_current  # Celery is eager here
    assert run.triggered_by.email == "admin@example.com"
    page = admin_client.get(reverse("admin:segmentation_segmentationrun_change", args=[run.pk]))
    assert b"Time per stage" in page.content and b"BG/NBD" in page.content
    # Every stage the run timed under its name on the page, none as a bare key.
    assert all(str(STAGE_LABELS[stage]) in page.content.decode() for stage in run.timings)
    assert b"<th>write_scores</th>" not in page.content


def test_recalculate_now_refuses_while_a_run_is_in_progress(admin_client, db):
    running = services.run_start()

    response = admin_client.post(
        reverse("admin:segmentation_segmentationrun_recalculate"), follow=True
    )

    assert b"A recalculation is already running." in response.content
    assert list(SegmentationRun.objects.all()) == [running]
    # The list page refreshes itself while the run is in progress.
    assert b'http-equiv="refresh"' in response.content


def test_support_agents_cannot_start_a_run_or_export(client, scored):
    support = _client_in(client, "Support agent")

    assert (
        support.post(reverse("admin:segmentation_segmentationrun_recalculate")).status_code == 403
    )
    export = support.get(reverse("admin:segmentation_export") + "?segment=champions")
    assert export.status_code == 403
    assert SegmentationRun.objects.count() == 1


def test_the_dashboard_shows_every_part_of_the_analysis(client, scored):
    manager = _client_in(client, "Program manager")
    second = services.recalculate(now=NOW + dt.timedelta(days=30))

    response = manager.get(reverse("admin:segmentation_dashboard"))

    assert response.status_code == 200
    page = response.content.decode()
    for element in (
        "chart-segments",
        "rf-heatmap",
        "segment-kpis",
        "matrix",
        "chart-clv",
        "chart-alive",
        "movement",
    ):
        assert f'id="{element}"' in page
    for segment in Segment:
        assert f'data-segment="{segment.value}"' in page
    assert "Make them profitable" in page  # each quadrant's advice
    assert "vendor/chartjs/chart.umd.min.js" in page
    charts = response.context["charts"]
    assert sum(charts["members"]) == second.member_count
    assert sum(charts["quadrant_members"]) == second.member_count
    movement = response.context["movement"]
    assert response.context["before"] == scored
    assert movement["total"] == second.member_count
    assert 0 < movement["moved"] < movement["total"]


def test_the_dashboard_has_a_constant_number_of_queries(admin_client, db):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse("admin:segmentation_dashboard")).status_code == 200
        return len(captured)

    demo.seed(demo.DemoSpec(members=60, lines=False, now=NOW))
    services.recalculate(now=NOW)
    services.recalculate(now=NOW + dt.timedelta(days=1))
    queries()  # the first page fills the program settings' cache
    small = queries()
    MemberFactory.create_batch(150)
    services.recalculate(now=NOW + dt.timedelta(days=2))
    assert Member.objects.count() > 200
    assert queries() == small


def test_the_dashboard_without_runs_says_so(admin_client, db):
    response = admin_client.get(reverse("admin:segmentation_dashboard"))
    assert response.status_code == 200
    assert b'id="no-run"' in response.content


def test_a_segment_exports_exactly_its_members(admin_client, scored):
    response = admin_client.get(
        reverse("admin:segmentation_export") + f"?run={scored.pk}&segment=champions"
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(
        csv.reader(io.StringIO(b"".join(response.streaming_content).decode()), delimiter=";")
    )
    expected = set(
        MemberScore.objects.filter(run=scored, segment="champions").values_list(
            "member__member_number", flat=True
        )
    )
    assert rows[0][0] == "member number"
    assert {row[0] for row in rows[1:]} == expected and expected
    assert {row[5] for row in rows[1:]} == {"Champions"}  # the label; the key for machines:
    assert {row[rows[0].index("segment_key")] for row in rows[1:]} == {"champions"}


def test_an_unknown_segment_is_refused_with_a_message(admin_client, scored):
    response = admin_client.get(
        reverse("admin:segmentation_export") + "?segment=nonsense", follow=True
    )
    assert b"Choose a segment of a finished run to export." in response.content


def test_an_invalid_rule_is_a_form_error_and_saves_nothing(admin_client, scored):
    response = admin_client.post(
        reverse("admin:segmentation_rulesegment_add"),
        {
            "name": "Broken",
            "description": "",
            "is_active": "on",
            "rule": json.dumps({"field": "clv", "op": "in", "value": 3}),
        },
    )

    assert response.status_code == 200
    assert "operator must be one of" in str(response.context["adminform"].form.errors["rule"])
    assert not RuleSegment.objects.exists()


def test_a_valid_rule_is_saved_and_counted(admin_client, admin_user, scored):
    rule = {"all": [{"field": "quadrant", "op": "in", "value": ["true_friends"]}]}
    response = admin_client.post(
        reverse("admin:segmentation_rulesegment_add"),
        {"name": "Friends", "description": "", "is_active": "on", "rule": json.dumps(rule)},
    )

    assert response.status_code == 302
    segment = RuleSegment.objects.get()
    assert segment.rule == rule and segment.created_by == admin_user
    page = admin_client.get(reverse("admin:segmentation_rulesegment_change", args=[segment.pk]))
    assert b"rule-builder-spec" in page.content and b"rule_builder.js" in page.content


def test_the_live_preview_counts_or_names_the_error(admin_client, scored):
    url = reverse("admin:segmentation_rulesegment_preview")
    rule = {"field": "quadrant", "op": "in", "value": ["true_friends"]}

    ok = admin_client.post(url, {"rule": json.dumps(rule)})
    bad = admin_client.post(url, {"rule": json.dumps({"field": "nope", "op": "in", "value": []})})
    garbage = admin_client.post(url, {"rule": "{not json"})

    expected = MemberScore.objects.filter(run=scored, quadrant=Quadrant.TRUE_FRIENDS).count()
    assert ok.status_code == 200 and ok.json() == {"count": expected, "run": scored.pk}
    assert bad.status_code == 400 and bad.json()["code"] == "rule_invalid"
    assert "unknown field" in bad.json()["message"]
    assert garbage.status_code == 400 and garbage.json()["code"] == "invalid_json"
    assert not RuleSegment.objects.exists()


def test_the_member_page_shows_scores_and_rule_segments(admin_client, db):
    demo.seed(demo.DemoSpec(members=120, lines=False, now=NOW))
    segment = RuleSegment.objects.create(
        name="Everyone scored", rule={"field": "r_score", "op": "gte", "value": 1}
    )
    run = services.recalculate(now=NOW)
    score = MemberScore.objects.filter(run=run).exclude(r_score=None).first()

    response = admin_client.get(reverse("admin:members_member_change", args=[score.member_id]))

    page = response.content.decode()
    assert 'id="segment-scores"' in page
    assert escape(score.get_segment_display()) in page
    assert f"RFM <strong>{score.rfm_cell}</strong>" in page
    assert segment.name in page


def test_support_agents_see_scores_on_the_member_page(client, scored):
    support = _client_in(client, "Support agent")
    member_id = MemberScore.objects.filter(run=scored).values_list("member_id", flat=True)[0]

    response = support.get(reverse("admin:members_member_change", args=[member_id]))

    assert response.status_code == 200
    assert b'id="segment-scores"' in response.content
