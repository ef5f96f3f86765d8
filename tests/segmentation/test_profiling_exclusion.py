"""A member who objects to profiling is left out of every list of a segment's members that
leaves the system (admin CSV export, the partner API, targeting, segment-limited rewards,
segment.changed events) but still counts in the anonymous figures (sizes, dashboard). The
objection and its withdrawal apply at once: lists are filtered when they are read."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from loyalty import demo, events
from loyalty.partner_api.models import ApiScope
from members.models import ConsentChannel
from members.services import consent_change
from rewards.selectors import member_standing
from segmentation import selectors, services
from segmentation.models import MemberScore, RuleSegment, RuleSegmentMember, SegmentationRun
from tests.api.conftest import client_for
from tests.factories import MemberFactory, PartnerFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def object_to_profiling(member, *, objects: bool = True) -> None:
    consent_change(
        member=member, granted=not objects, source="portal", channel=ConsentChannel.PROFILING
    )


@pytest.fixture
def run(db):
    return SegmentationRun.objects.create(status="done", is_current=True)


@pytest.fixture
def champions(run):
    """Three champions, all in the rule segment "Weekend shoppers"; the last one objects."""
    members = MemberFactory.create_batch(3)
    MemberScore.objects.bulk_create(
        MemberScore(
            run=run,
            member=m,
            frequency=3,
            monetary=90.0,
            segment="champions",
            quadrant="true_friends",
        )
        for m in members
    )
    object_to_profiling(members[-1])
    return members


@pytest.fixture
def weekend_shoppers(run, champions):
    segment = RuleSegment.objects.create(name="Weekend shoppers", rule={"all": []})
    RuleSegmentMember.objects.bulk_create(
        RuleSegmentMember(run=run, segment=segment, member=member) for member in champions
    )
    return segment


@pytest.fixture
def api(program):
    return client_for(PartnerFactory(name="CRM"), ApiScope.SEGMENTS_READ)


def api_member_numbers(api, path: str) -> set[str]:
    response = api.get(f"/api/v1/segments/{path}/members/")
    assert response.status_code == 200, response.json()
    return {row["member_number"] for row in response.json()["results"]}


def exported_member_numbers(admin_client, query: str) -> set[str]:
    response = admin_client.get(reverse("admin:segmentation_export") + query)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    return {row[0] for row in rows[1:]}


def numbers(members) -> set[str]:
    return {m.member_number for m in members}


def test_an_objecting_member_is_not_in_the_admin_export_of_their_segment(
    admin_client, champions, weekend_shoppers
):
    *others, objector = champions

    by_segment = exported_member_numbers(admin_client, "?segment=champions")
    by_quadrant = exported_member_numbers(admin_client, "?quadrant=true_friends")
    by_rule = exported_member_numbers(admin_client, f"?rule_segment={weekend_shoppers.pk}")

    assert by_segment == by_quadrant == by_rule == numbers(others)
    assert objector.member_number not in by_segment


def test_an_objecting_member_is_not_in_the_api_member_list_but_counts_in_the_size(
    api, champions, weekend_shoppers
):
    *others, objector = champions

    sizes = {
        (s["kind"], s["key"]): s["members"] for s in api.get("/api/v1/segments/").json()["segments"]
    }

    assert api_member_numbers(api, "rfm/champions") == numbers(others)
    assert objector.member_number not in api_member_numbers(api, "rfm/champions")
    assert api_member_numbers(api, "quadrant/true_friends") == numbers(others)
    assert api_member_numbers(api, f"rule/{weekend_shoppers.pk}") == numbers(others)
    assert sizes[("rfm", "champions")] == 3
    assert sizes[("quadrant", "true_friends")] == 3
    assert sizes[("rule", str(weekend_shoppers.pk))] == 3


def test_the_dashboard_figures_still_count_an_objecting_member(run, champions):
    summary = {row.segment: row.members for row in selectors.segment_summary(run=run)}
    quadrants = {row.quadrant: row.members for row in selectors.quadrant_summary(run=run)}

    assert summary["champions"] == 3
    assert quadrants["true_friends"] == 3


def test_withdrawing_the_objection_brings_the_member_back_at_once(
    api, admin_client, champions, weekend_shoppers
):
    objector = champions[-1]

    object_to_profiling(objector, objects=False)  # no new run in between

    assert objector.member_number in api_member_numbers(api, "rfm/champions")
    assert objector.member_number in exported_member_numbers(admin_client, "?segment=champions")
    assert objector in selectors.members_in_segments(segments=["champions"])


def test_an_objection_applies_at_once_to_lists_of_the_current_run(api, champions):
    first = champions[0]

    object_to_profiling(first)

    assert first.member_number not in api_member_numbers(api, "rfm/champions")


def test_targeting_leaves_out_an_objecting_member(champions, weekend_shoppers):
    *others, objector = champions

    targeted = selectors.members_in_segments(
        segments=["champions"], rule_segment_ids=[weekend_shoppers.pk]
    )

    assert set(targeted) == set(others) and objector not in targeted


@pytest.mark.parametrize("all_at_once", [False, True])
def test_a_list_read_whole_leaves_out_the_same_objectors_as_one_read_per_page(
    champions, all_at_once
):
    *others, objector = champions
    withdrawn = others[0]
    object_to_profiling(withdrawn)
    object_to_profiling(withdrawn, objects=False)  # the newest choice counts

    targeted = selectors.members_in_segments(segments=["champions"], all_at_once=all_at_once)

    assert set(targeted) == set(others) and objector not in targeted


def test_segment_limited_rewards_do_not_target_an_objecting_member(champions, weekend_shoppers):
    *others, objector = champions

    assert member_standing(member=objector).rule_segment_ids == frozenset()
    assert member_standing(member=others[0]).rule_segment_ids == {weekend_shoppers.pk}
    # Their own data (GDPR export, admin page) still shows what the program computed.
    assert selectors.member_rule_segments(member=objector) == [weekend_shoppers]


def test_the_api_segment_page_costs_the_same_queries_with_objectors(
    api, run, champions, django_assert_max_num_queries
):
    more = MemberFactory.create_batch(20)
    MemberScore.objects.bulk_create(
        MemberScore(run=run, member=m, frequency=1, monetary=5.0, segment="champions") for m in more
    )
    for member in more[::2]:
        object_to_profiling(member)

    with django_assert_max_num_queries(6):  # key, last-used, run, segment check, the page
        response = api.get("/api/v1/segments/rfm/champions/members/?page_size=100")

    assert len(response.json()["results"]) == 2 + 10


def test_segment_changes_are_not_told_about_an_objecting_member(db):
    demo.seed(demo.DemoSpec(members=120, lines=False, now=NOW))
    from members.models import Member, MemberStatus

    objector = Member.objects.filter(status=MemberStatus.ACTIVE).order_by("pk").first()
    object_to_profiling(objector)
    seen: list = []
    events.subscribe("segment.changed", seen.append)
    try:
        run = services.recalculate(now=NOW)
    finally:
        events.unsubscribe("segment.changed", seen.append)

    told = {event.member_id for event in seen}
    assert MemberScore.objects.filter(run=run, member=objector).exists()  # still scored
    assert objector.pk not in told
    assert len(told) == run.member_count - 1  # everyone else is new in the first run
