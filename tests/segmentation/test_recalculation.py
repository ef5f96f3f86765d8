"""Recalculation runs: bulk write, atomic swap, snapshots, failure, concurrency, real worker."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from loyalty import demo
from segmentation import services
from segmentation.errors import RecalculationRunning
from segmentation.models import (
    MemberScore,
    Quadrant,
    RuleSegment,
    RuleSegmentMember,
    RunStatus,
    Segment,
    SegmentationRun,
    SegmentationSettings,
)
from segmentation.pipeline import Parameters, compute_scores
from segmentation.selectors import current_run
from segmentation.tasks import recalculate_segments
from tests.conftest import wait_until

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def demo_program(db):
    demo.seed(demo.DemoSpec(members=400, lines=False, now=NOW))


def test_a_run_scores_every_active_member_and_becomes_current(demo_program):
    from members.models import Member, MemberStatus

    run = services.recalculate(now=NOW)

    assert run.status == RunStatus.DONE, run.error
    assert run.is_current and current_run() == run
    active = Member.objects.filter(status=MemberStatus.ACTIVE).count()
    assert run.member_count == active == MemberScore.objects.filter(run=run).count()
    assert run.progress == 100 and run.finished_at is not None
    assert set(run.timings) == {
        "aggregate",
        "score",
        "rule_segments",
        "write_scores",
        "write_rule_segments",
        "swap",
    }
    assert set(run.parameters["clv_parameters"]["mbgnbd"]) == {"r", "alpha", "a", "b"}
    # The demo data populates every named segment and every quadrant.
    segments = set(MemberScore.objects.filter(run=run).values_list("segment", flat=True))
    quadrants = set(MemberScore.objects.filter(run=run).values_list("quadrant", flat=True))
    assert segments == set(Segment.values)
    assert quadrants == set(Quadrant.values)
    # Scores are consistent with what a member bought.
    without = MemberScore.objects.filter(run=run, segment=Segment.NO_PURCHASES)
    assert not without.exclude(r_score=None).exists()
    assert not without.exclude(frequency=0).exists()
    scored = MemberScore.objects.filter(run=run).exclude(segment=Segment.NO_PURCHASES)
    assert not scored.filter(r_score=None).exists()
    assert not scored.filter(frequency=0).exists()


def test_a_new_run_replaces_the_current_one_and_old_runs_are_pruned(
    demo_program, django_capture_on_commit_callbacks
):
    settings = SegmentationSettings.load()
    settings.retention_runs = 2
    settings.save()

    with django_capture_on_commit_callbacks(execute=True):  # the prune task runs after commit
        first = services.recalculate(now=NOW)
        second = services.recalculate(now=NOW + dt.timedelta(days=1))
        third = services.recalculate(now=NOW + dt.timedelta(days=2))

    assert list(SegmentationRun.objects.filter(is_current=True)) == [third]
    assert not SegmentationRun.objects.filter(pk=first.pk).exists()
    assert not MemberScore.objects.filter(run_id=first.pk).exists()
    assert MemberScore.objects.filter(run=second).count() == second.member_count


def test_rule_segments_are_materialised_in_the_run(demo_program):
    champions = RuleSegment.objects.create(
        name="Champions", rule={"field": "segment", "op": "in", "value": ["champions"]}
    )
    RuleSegment.objects.create(
        name="Inactive", rule={"field": "consent", "op": "is", "value": True}, is_active=False
    )

    run = services.recalculate(now=NOW)

    expected = set(
        MemberScore.objects.filter(run=run, segment="champions").values_list("member_id", flat=True)
    )
    materialised = set(
        RuleSegmentMember.objects.filter(run=run, segment=champions).values_list(
            "member_id", flat=True
        )
    )
    assert expected and materialised == expected
    assert run.parameters["rule_segments"] == {"Champions": len(expected)}


def test_a_failure_midway_leaves_the_previous_run_current(demo_program, monkeypatch):
    RuleSegment.objects.create(name="All", rule={"field": "r_score", "op": "gte", "value": 1})
    good = services.recalculate(now=NOW)

    def broken(run):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_replace_current_run", broken)
    failed = services.recalculate(now=NOW + dt.timedelta(days=1))

    assert failed.status == RunStatus.FAILED and not failed.is_current
    assert "disk full" in failed.error
    assert current_run() == good
    # The scores it had written were rolled back with it: nothing half-written remains.
    assert not MemberScore.objects.filter(run=failed).exists()
    assert not RuleSegmentMember.objects.filter(run=failed).exists()
    assert MemberScore.objects.filter(run=good).count() == good.member_count


def test_only_one_run_at_a_time_and_a_stale_run_is_abandoned(db):
    running = services.run_start()
    with pytest.raises(RecalculationRunning):
        services.run_start()

    SegmentationRun.objects.filter(pk=running.pk).update(
        started_at=timezone.now() - services.STALE_AFTER - dt.timedelta(minutes=1)
    )
    fresh = services.run_start()

    running.refresh_from_db()
    assert running.status == RunStatus.FAILED and running.error  # "Abandoned: ..."
    assert fresh.status == RunStatus.RUNNING


def test_a_run_without_purchases_still_finishes(program, member):
    run = services.recalculate(now=NOW)

    assert run.status == RunStatus.DONE, run.error
    score = MemberScore.objects.get(run=run, member=member)
    assert score.segment == Segment.NO_PURCHASES and score.quadrant == Quadrant.STRANGERS
    assert run.parameters["clv_skipped"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_register_one_run():
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            services.run_start()
            outcomes.append("started")
        except RecalculationRunning:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["refused"] * 3 + ["started"]
    assert SegmentationRun.objects.filter(status=RunStatus.RUNNING).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_staged_writes_on_two_connections_vanish_when_the_run_fails(monkeypatch):
    """Outside a transaction PostgreSQL writes scores and memberships at once on two
    connections before the swap; a failure after them must leave no rows and the old run."""
    demo.seed(demo.DemoSpec(members=200, lines=False, now=NOW))
    segment = RuleSegment.objects.create(
        name="Consenting", rule={"field": "consent", "op": "is", "value": True}
    )
    good = services.recalculate(now=NOW)
    assert good.status == RunStatus.DONE, good.error
    assert set(good.timings) >= {"write_scores", "write_rule_segments", "swap"}
    # Both staged writes landed: every score and every membership the run counted.
    assert MemberScore.objects.filter(run=good).count() == good.member_count > 150
    members = RuleSegmentMember.objects.filter(run=good, segment=segment).count()
    assert members == good.parameters["rule_segments"]["Consenting"] > 0

    written: list[int] = []
    real_write = services.write_memberships

    def write_then_count(run, memberships):
        real_write(run, memberships)
        # Autocommitted on this thread's own connection: staged, not in the swap transaction.
        assert not connection.in_atomic_block
        written.append(RuleSegmentMember.objects.filter(run=run).count())
        return len(memberships)

    def broken(run):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "write_memberships", write_then_count)
    monkeypatch.setattr(services, "_replace_current_run", broken)
    failed = services.recalculate(now=NOW + dt.timedelta(days=1))

    assert failed.status == RunStatus.FAILED and "disk full" in failed.error
    assert written and written[0] > 0
    assert current_run() == good
    assert not MemberScore.objects.filter(run=failed).exists()
    assert not RuleSegmentMember.objects.filter(run=failed).exists()
    assert MemberScore.objects.filter(run=good).count() == good.member_count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_scores_written_while_the_rules_fail_are_deleted(monkeypatch):
    """The scores start writing before the rule segments are evaluated; a rule failure must
    still leave no rows of the failed run (they are deleted once the write has finished)."""
    demo.seed(demo.DemoSpec(members=150, lines=False, now=NOW))
    RuleSegment.objects.create(name="Anyone", rule={"field": "r_score", "op": "gte", "value": 1})
    good = services.recalculate(now=NOW)
    started: list[int] = []
    real_write = services.write_scores

    def write_and_note(run, scores):
        started.append(run.pk)
        return real_write(run, scores)

    def broken(*args):
        while not started:  # fail only once the scores write is under way
            time.sleep(0.01)
        raise RuntimeError("rule engine down")

    monkeypatch.setattr(services, "write_scores", write_and_note)
    monkeypatch.setattr(services, "_rule_memberships", broken)
    failed = services.recalculate(now=NOW + dt.timedelta(days=1))

    assert failed.status == RunStatus.FAILED and "rule engine down" in failed.error
    assert started == [failed.pk]
    assert not MemberScore.objects.filter(run=failed).exists()
    assert current_run() == good
    assert MemberScore.objects.filter(run=good).count() == good.member_count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_abandoned_run_loses_its_staged_rows():
    demo.seed(demo.DemoSpec(members=100, lines=False, now=NOW))
    abandoned = services.run_start()
    scores, _info = compute_scores(*_inputs_for_a_run(), Parameters())
    services.write_scores(abandoned, scores)
    SegmentationRun.objects.filter(pk=abandoned.pk).update(
        started_at=timezone.now() - services.STALE_AFTER - dt.timedelta(minutes=1)
    )

    services.run_start()

    abandoned.refresh_from_db()
    assert abandoned.status == RunStatus.FAILED
    assert not MemberScore.objects.filter(run=abandoned).exists()


def _inputs_for_a_run():
    from segmentation.run_inputs import purchase_aggregates, scored_member_ids

    aggregates = purchase_aggregates(now=NOW, window_start=NOW - dt.timedelta(days=365))
    return aggregates, scored_member_ids()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_aggregate_on_two_connections_equals_one_connection():
    from django.db import transaction

    from members.models import Member, MemberStatus
    from segmentation.run_inputs import purchase_aggregates, run_inputs

    demo.seed(demo.DemoSpec(members=200, lines=False, now=NOW))
    window = NOW - dt.timedelta(days=365)
    halves = purchase_aggregates(now=NOW, window_start=window)  # autocommit: two halves
    with transaction.atomic():
        whole = purchase_aggregates(now=NOW, window_start=window)
    left = halves.sort_values("member_id").reset_index(drop=True)
    right = whole.sort_values("member_id").reset_index(drop=True)
    assert len(left) > 150
    assert left.equals(right)

    # The run's inputs: each connection reads its range of members after its purchases.
    Member.objects.filter(pk__in=Member.objects.order_by("pk").values("pk")[:3]).update(
        status=MemberStatus.BLOCKED
    )
    frame, ids = run_inputs(now=NOW, window_start=window)
    assert frame.sort_values("member_id").reset_index(drop=True).equals(right)
    assert ids.tolist() == list(
        Member.objects.filter(status=MemberStatus.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert ids.is_monotonic_increasing and len(ids) > 150


@pytest.mark.celery_worker
def test_the_worker_recalculates_and_the_task_is_safe_to_deliver_twice(celery_worker):
    demo.seed(demo.DemoSpec(members=300, lines=False))
    run = services.run_start()

    recalculate_segments.delay(run.pk)

    finished = wait_until(
        lambda: SegmentationRun.objects.filter(pk=run.pk, status=RunStatus.DONE).first(),
        timeout=120,
    )
    assert finished.is_current
    assert MemberScore.objects.filter(run=run).count() == finished.member_count > 0
    # A second delivery of the same message changes nothing.
    assert recalculate_segments.apply(args=[run.pk]).get() == run.pk
    assert SegmentationRun.objects.count() == 1


def test_segment_changes_are_told_per_member_that_moved_and_only_to_listeners(demo_program):
    from loyalty import events

    seen = []
    events.subscribe("segment.changed", seen.append)
    try:
        first = services.recalculate(now=NOW)
        told_first = list(seen)
        seen.clear()
        services.recalculate(now=NOW)  # the same data at the same moment: nobody moved
        told_again = list(seen)
    finally:
        events.unsubscribe("segment.changed", seen.append)
    services.recalculate(now=NOW + dt.timedelta(days=400))  # nobody listens: nothing computed

    assert len(told_first) == first.member_count > 0  # all new in the first run
    event = told_first[0]
    score = MemberScore.objects.get(run=first, member_id=event.member_id)
    assert event.data["segment"] == score.segment and event.data["segment_before"] is None
    assert told_again == []
    assert "segment_events" not in current_run().timings


def _estimated_rows(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        import json

        plan = json.loads(plan)
    return plan[0]["Plan"]["Plan Rows"]


@pytest.mark.postgres
def test_the_planner_knows_the_new_runs_size_before_anything_joins_it(demo_program):
    """Without statistics the planner took a fresh run for one row and joined two runs of a
    million members by a nested loop over the whole other run (hours at 1M members): the swap
    analyzes the snapshot tables first, so the dashboard's transitions and the segment-entry
    automations are planned on what was written."""
    first = services.recalculate(now=NOW)
    second = services.recalculate(now=NOW + dt.timedelta(days=1))

    assert second.status == RunStatus.DONE, second.error
    table = MemberScore._meta.db_table
    written = MemberScore.objects.filter(run=second).count()
    estimated = _estimated_rows(f"SELECT * FROM {table} WHERE run_id = %s", [second.pk])
    assert written / 2 <= estimated <= written * 2, (estimated, written)
    joined = _estimated_rows(
        f"SELECT * FROM {table} new JOIN {table} old ON old.member_id = new.member_id "
        "AND old.run_id = %s WHERE new.run_id = %s",
        [first.pk, second.pk],
    )
    assert joined > written / 2, (joined, written)
