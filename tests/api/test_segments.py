"""Segments on the partner API: sizes in the current run, and one segment's members paged by
member id (only active members, only member numbers)."""

from __future__ import annotations

import pytest

from loyalty.partner_api.models import ApiScope
from members.models import Member, MemberStatus
from segmentation.models import MemberScore, RuleSegment, RuleSegmentMember, SegmentationRun
from tests.api.conftest import client_for
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def score(run, member, segment="champions", quadrant="true_friends") -> MemberScore:
    return MemberScore(
        run=run, member=member, frequency=3, monetary=90.0, segment=segment, quadrant=quadrant
    )


@pytest.fixture
def run(db):
    return SegmentationRun.objects.create(status="done", is_current=True)


@pytest.fixture
def scored(run):
    """Three active champions, one lost member, and a blocked champion."""
    champions = MemberFactory.create_batch(3)
    lost = MemberFactory()
    blocked = MemberFactory(status=MemberStatus.BLOCKED)
    MemberScore.objects.bulk_create(
        [score(run, m) for m in [*champions, blocked]]
        + [score(run, lost, segment="lost", quadrant="strangers")]
    )
    return champions


@pytest.fixture
def weekend_shoppers(run, scored):
    segment = RuleSegment.objects.create(name="Weekend shoppers", rule={"all": []})
    RuleSegmentMember.objects.bulk_create(
        RuleSegmentMember(run=run, segment=segment, member=member) for member in scored[:2]
    )
    return segment


def test_the_segment_list_gives_every_segment_quadrant_and_rule_with_active_members(
    api, run, weekend_shoppers
):
    response = api.get("/api/v1/segments/")

    body = response.json()
    assert response.status_code == 200
    assert body["run"]["id"] == run.pk
    sizes = {(s["kind"], s["key"]): s["members"] for s in body["segments"]}
    assert sizes[("rfm", "champions")] == 3
    assert sizes[("rfm", "lost")] == 1 and sizes[("rfm", "loyal")] == 0
    assert sizes[("quadrant", "true_friends")] == 3
    assert sizes[("rule", str(weekend_shoppers.pk))] == 2


def test_before_the_first_run_the_list_has_no_run_and_empty_segments(api, program):
    response = api.get("/api/v1/segments/")

    assert response.status_code == 200 and response.json()["run"] is None
    assert {s["members"] for s in response.json()["segments"]} == {0}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("rfm/champions", slice(0, 3)),
        ("quadrant/true_friends", slice(0, 3)),
        ("rule/{rule}", slice(0, 2)),
    ],
)
def test_a_segments_active_members_come_in_member_id_order(
    api, scored, weekend_shoppers, path, expected
):
    url = f"/api/v1/segments/{path.format(rule=weekend_shoppers.pk)}/members/"

    response = api.get(url)

    assert response.status_code == 200, response.json()
    assert response.json()["results"] == [
        {"member_number": m.member_number} for m in sorted(scored, key=lambda m: m.pk)[expected]
    ]


def test_the_lost_quadrant_member_is_listed_under_strangers(api, run, scored):
    lost = Member.objects.get(segment_scores__segment="lost")

    response = api.get("/api/v1/segments/quadrant/strangers/members/")

    assert response.json()["results"] == [{"member_number": lost.member_number}]


def test_segment_members_page_with_a_cursor(api, scored):
    first = api.get("/api/v1/segments/rfm/champions/members/", {"page_size": 2}).json()
    second = api.get(first["next"]).json()

    numbers = [m["member_number"] for m in first["results"] + second["results"]]
    assert numbers == [m.member_number for m in sorted(scored, key=lambda m: m.pk)]
    assert second["next"] is None


def test_a_page_of_segment_members_holds_at_most_1000(api, run):
    members = Member.objects.bulk_create(
        Member(email=f"s{i}@example.com", member_number=f"8{i:08d}", status="active")
        for i in range(1001)
    )
    MemberScore.objects.bulk_create(score(run, member) for member in members)

    response = api.get("/api/v1/segments/rfm/champions/members/", {"page_size": 5000})

    assert len(response.json()["results"]) == 1000 and response.json()["next"]


def test_a_page_of_segment_members_costs_the_same_queries_at_any_size(
    api, scored, django_assert_max_num_queries
):
    with django_assert_max_num_queries(5):  # key, last used, current run, the page
        response = api.get("/api/v1/segments/rfm/champions/members/", {"page_size": 100})

    assert len(response.json()["results"]) == 3


@pytest.mark.parametrize("path", ["rfm/nobody", "quadrant/champions", "rule/999999", "rule/x"])
def test_an_unknown_segment_is_404_segment_not_found(api, scored, path):
    response = api.get(f"/api/v1/segments/{path}/members/")

    assert response.status_code == 404 and response.json()["code"] == "segment_not_found"


def test_an_unknown_kind_is_a_404_problem(api, scored):
    response = api.get("/api/v1/segments/tier/gold/members/")

    assert response.status_code == 404 and response.json()["code"] == "segment_not_found"


def test_segments_need_the_segments_read_scope(shop, scored):
    client = client_for(shop, ApiScope.MEMBERS_READ)

    assert client.get("/api/v1/segments/").status_code == 403
    assert client.get("/api/v1/segments/rfm/champions/members/").status_code == 403
