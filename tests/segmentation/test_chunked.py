"""A recalculation split by member-id range (chunked.py) gives the single-process result."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.utils import timezone

from loyalty import demo
from loyalty.models import Purchase
from members.models import Member
from segmentation import chunked, services
from segmentation.management.commands.demo_segments import EXAMPLES
from segmentation.models import (
    MemberScore,
    RuleSegment,
    RuleSegmentMember,
    RunRange,
    RunStatus,
    SegmentationRun,
    SegmentationSettings,
)
from segmentation.pipeline import SAMPLE_METHOD
from segmentation.selectors import current_run
from segmentation.tasks import recalculate_range, recalculate_segments
from tests.conftest import wait_until
from tests.factories import MemberFactory

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)

SCORE_FIELDS = [
    "member_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "segment",
    "quadrant",
]
VALUE_FIELDS = ["expected_purchases", "p_alive", "clv"]


def _seed_with_ties(members: int = 300) -> None:
    """The demo program, plus members whose purchases copy another member's exactly (same
    times, same amounts: ties in R, F and M), and the example rule segments."""
    demo.seed(demo.DemoSpec(members=members, lines=False, now=NOW))
    buyers = list(Member.objects.filter(purchases__isnull=False).distinct().order_by("pk")[:40])
    copies = []
    for number, original in enumerate(buyers):
        twin = MemberFactory()
        for purchase in Purchase.objects.filter(member=original):
            purchase.pk = None
            purchase.member = twin
            purchase.external_id = f"twin-{number}-{purchase.external_id}"
            copies.append(purchase)
    Purchase.objects.bulk_create(copies)
    for name, description, rule in EXAMPLES:
        RuleSegment.objects.create(name=name, description=description, rule=rule)


def _scores(run: SegmentationRun) -> list[tuple]:
    return list(
        MemberScore.objects.filter(run=run)
        .order_by("member_id")
        .values_list(*SCORE_FIELDS, *VALUE_FIELDS)
    )


def _memberships(run: SegmentationRun) -> set[tuple]:
    return set(RuleSegmentMember.objects.filter(run=run).values_list("segment_id", "member_id"))


def _assert_same(single: SegmentationRun, split: SegmentationRun) -> None:
    expected, actual = _scores(single), _scores(split)
    assert len(actual) == len(expected) == single.member_count == split.member_count
    width = len(SCORE_FIELDS)
    # Scores, segments and quadrants exactly; CLV figures within floating tolerance.
    assert [row[:width] for row in actual] == [row[:width] for row in expected]
    values = np.array([row[width:] for row in actual], dtype="float64")
    reference = np.array([row[width:] for row in expected], dtype="float64")
    np.testing.assert_allclose(values, reference, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert _memberships(split) == _memberships(single)
    assert split.parameters["rule_segments"] == single.parameters["rule_segments"]
    assert split.parameters["thresholds"] == pytest.approx(single.parameters["thresholds"])


@pytest.fixture
def dataset(db):
    _seed_with_ties()


def _set(**values) -> None:
    SegmentationSettings.objects.filter(pk=SegmentationSettings.load().pk).update(**values)


def test_the_chunked_run_equals_the_single_run_for_any_range_size(dataset, monkeypatch):
    from segmentation import run_inputs

    monkeypatch.setattr(run_inputs, "MIN_SPLIT_IDS", 10)  # PostgreSQL: halves read apart
    single = services.recalculate(now=NOW)
    assert single.status == RunStatus.DONE, single.error
    ids = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    # Whole population in one range, a few ranges, many small ones; the ids also leave gaps
    # when members are deleted: ranges past the highest id of a block hold nobody.
    Member.objects.filter(pk__in=ids[50:120]).update(status="closed")
    single = services.recalculate(now=NOW)
    for size in (len(ids) + 5, 97, 13, 1):
        _set(range_size=size)
        split = chunked.recalculate_chunked(now=NOW)
        assert split.status == RunStatus.DONE, split.error
        assert split.is_current and current_run() == split
        assert split.parameters["chunks"]["ranges"] == RunRange.objects.filter(run=split).count()
        _assert_same(single, split)
    # With ranges of one id, some ranges hold nobody (the closed members): still done.
    empty = RunRange.objects.filter(run=split, rows=0)
    assert empty.count() >= 70 and not empty.filter(done=False).exists()


def test_frequency_bands_and_set_thresholds_are_kept(dataset):
    _set(frequency_scoring="bands", loyalty_threshold=1.5, profitability_threshold=40)
    single = services.recalculate(now=NOW)
    _set(range_size=31)
    split = chunked.recalculate_chunked(now=NOW)
    assert split.status == RunStatus.DONE, split.error
    _assert_same(single, split)
    assert split.parameters["thresholds"] == {"loyalty": 1.5, "profitability": 40.0}


def test_the_clv_sample_is_seeded_recorded_and_bounded(dataset):
    customers = Member.objects.filter(purchases__isnull=False).distinct().count()
    _set(clv_sample_size=1000, range_size=50)
    whole = chunked.recalculate_chunked(now=NOW)
    assert whole.parameters["clv_sample"] == {
        "size": 1000,
        "seed": chunked.CLV_SAMPLE_SEED,
        "customers": customers,
        "method": SAMPLE_METHOD,
    }
    SegmentationSettings.objects.update(clv_sample_size=100)  # below the form's minimum
    first = chunked.recalculate_chunked(now=NOW)
    second = chunked.recalculate_chunked(now=NOW)
    assert first.parameters["clv_sample"]["customers"] == 100
    # Seeded: the same data gives the same sample and the same parameters.
    assert first.parameters["clv_parameters"] == second.parameters["clv_parameters"]
    assert first.parameters["clv_parameters"] != whole.parameters["clv_parameters"]


def test_a_range_delivered_twice_writes_once(dataset):
    _set(range_size=60)
    run = services.run_start()
    chunked.run_prepare(run, NOW)
    numbers = list(run.ranges.values_list("number", flat=True))
    assert len(numbers) >= 4
    assert chunked.range_execute(run.pk, numbers[0]) is True
    written = MemberScore.objects.filter(run=run).count()
    assert written > 0
    # Again: nothing more (the range is done).
    assert recalculate_range.apply(args=[run.pk, numbers[0]]).get() is True
    assert MemberScore.objects.filter(run=run).count() == written
    # A delivery that died after writing part of its rows, before marking the range done:
    # the next one deletes them first (else its COPY would collide with them).
    second = run.ranges.get(number=numbers[1])
    member_id = (
        Member.objects.filter(status="active", pk__gte=second.first_id, pk__lte=second.last_id)
        .values_list("pk", flat=True)
        .first()
    )
    assert member_id is not None
    MemberScore.objects.create(
        run=run,
        member_id=member_id,
        frequency=99,
        monetary=0,
        segment="no_purchases",
        quadrant="strangers",
    )
    for number in numbers[1:]:
        chunked.range_execute(run.pk, number)
    run.refresh_from_db()
    assert run.status == RunStatus.DONE and run.is_current
    assert MemberScore.objects.filter(run=run).count() == run.member_count
    assert run.member_count == sum(run.ranges.values_list("rows", flat=True))
    assert not MemberScore.objects.filter(run=run, frequency=99).exists()


def test_a_failing_range_leaves_the_previous_run_current_and_resume_completes_it(
    dataset, monkeypatch
):
    previous = services.recalculate(now=NOW)
    _set(range_size=70)
    real = chunked.compute_scores
    calls = {"count": 0}

    def fails_on_the_second_range(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 2:
            raise RuntimeError("worker lost its database")
        return real(*args, **kwargs)

    monkeypatch.setattr(chunked, "compute_scores", fails_on_the_second_range)
    run = services.run_start()
    recalculate_segments(run.pk)  # eager Celery: the ranges run inline, one after the other

    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and not run.is_current
    assert "worker lost its database" in run.error
    assert current_run() == previous
    assert run.ranges.filter(done=False).count() == 1
    assert chunked.runs_to_resume() == [run]
    # Another start is refused while it is resumable.
    with pytest.raises(services.RecalculationRunning):
        services.run_start()

    monkeypatch.setattr(chunked, "compute_scores", real)
    assert chunked.run_resume(
        run, dispatch=lambda run_id, number: recalculate_range.delay(run_id, number)
    )
    run.refresh_from_db()
    assert run.status == RunStatus.DONE and run.is_current and not run.error
    assert current_run() == run
    single = services.recalculate(now=dt.datetime.fromisoformat(run.parameters["now"]))
    _assert_same(single, run)


def test_a_run_that_fails_leaves_nothing_visible(dataset, monkeypatch):
    previous = services.recalculate(now=NOW)
    _set(range_size=70)
    real = chunked.write_memberships
    calls = {"count": 0}

    def fails_on_the_third_write(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(chunked, "write_memberships", fails_on_the_third_write)
    failed = chunked.recalculate_chunked(now=NOW)  # inline: a failure fails the run
    assert failed.status == RunStatus.FAILED and "disk full" in failed.error
    assert current_run() == previous
    assert not MemberScore.objects.filter(run=failed).exists()
    assert not RuleSegmentMember.objects.filter(run=failed).exists()


def test_a_stale_resumable_run_is_abandoned_and_its_late_range_writes_nothing(dataset):
    _set(range_size=100)
    run = services.run_start()
    chunked.run_prepare(run, NOW)
    first = run.ranges.order_by("number").first()
    chunked.range_execute(run.pk, first.number)
    SegmentationRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - services.STALE_AFTER - dt.timedelta(minutes=1)
    )
    fresh = services.run_start()  # the sweep marks the old run failed, deletes its rows
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert not MemberScore.objects.filter(run=run).exists()
    last = run.ranges.order_by("number").last()
    assert chunked.range_execute(run.pk, last.number) is False
    assert not MemberScore.objects.filter(run=run).exists()
    assert fresh.status == RunStatus.RUNNING


@pytest.mark.celery_worker
def test_a_real_worker_runs_the_ranges_and_swaps_the_run_in(celery_worker):
    _seed_with_ties(200)
    _set(range_size=45)
    run = services.run_start()

    recalculate_segments.delay(run.pk)

    finished = wait_until(
        lambda: SegmentationRun.objects.filter(pk=run.pk, status=RunStatus.DONE).first(),
        timeout=120,
    )
    assert finished.is_current and finished.parameters["chunks"]["ranges"] >= 5
    assert MemberScore.objects.filter(run=run).count() == finished.member_count > 0
    assert all(part.done for part in finished.ranges.all())
    # A range delivered once more, and the run's own task, change nothing.
    assert recalculate_range.apply(args=[run.pk, 1]).get() is False
    assert recalculate_segments.apply(args=[run.pk]).get() == run.pk
    assert MemberScore.objects.filter(run=run).count() == finished.member_count
    # The same result as one process.
    single = services.recalculate(now=dt.datetime.fromisoformat(finished.parameters["now"]))
    _assert_same(single, finished)


def test_the_run_page_offers_resume_for_a_failed_range(
    dataset, monkeypatch, admin_client, settings, django_capture_on_commit_callbacks
):
    from django.core.management import call_command
    from django.urls import reverse

    settings.LANGUAGE_CODE = "en"
    _set(range_size=90)
    real = chunked.compute_scores
    monkeypatch.setattr(
        chunked, "compute_scores", lambda *a, **k: (_ for _ in ()).throw(ValueError("boom"))
    )
    run = services.run_start()
    recalculate_segments(run.pk)
    page = reverse("admin:segmentation_segmentationrun_change", args=[run.pk])
    assert b"Resume the run" in admin_client.get(page).content
    monkeypatch.setattr(chunked, "compute_scores", real)

    # One range done by hand, the others by the run page's Resume (eager Celery here).
    first = run.ranges.order_by("number").first()
    chunked.range_execute(run.pk, first.number)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:segmentation_segmentationrun_resume", args=[run.pk]), follow=True
        )
    assert b"The run carries on" in response.content
    run.refresh_from_db()
    assert run.status == RunStatus.DONE and run.is_current
    assert b"Resume the run" not in admin_client.get(page).content
    # The command finds nothing left to resume.
    with pytest.raises(Exception, match="No run in progress"):
        call_command("resume_segments")


def test_a_broker_away_at_the_hand_off_leaves_the_run_resumable(dataset):
    _set(range_size=100)

    def broker_away(run_id: int, number: int) -> None:
        raise ConnectionError("broker away")

    run = chunked.recalculate_chunked(now=NOW, dispatch=broker_away)
    assert run.status == RunStatus.RUNNING and "broker away" in run.error
    assert chunked.runs_to_resume() == [run]
    assert chunked.run_resume(run) == list(run.ranges.values_list("number", flat=True))
    run.refresh_from_db()
    assert run.status == RunStatus.DONE and run.is_current and not run.error


def test_the_command_runs_range_by_range_with_a_progress_bar(dataset, capsys):
    """`manage.py recalculate_segments` is a whole-program job a person starts: it goes range
    by range like the workers (memory bounded by the range), not the single-process run."""
    from io import StringIO

    from django.core.management import call_command

    _set(range_size=100)
    out = StringIO()
    call_command("recalculate_segments", stdout=out)

    run = current_run()
    assert run is not None and run.status == RunStatus.DONE
    assert run.parameters["chunks"]["ranges"] == run.ranges.count() >= 2
    assert run.ranges.filter(done=False).count() == 0
    assert f"{run.member_count} members scored" in out.getvalue()
    bar = capsys.readouterr().err
    assert "30/100" in bar and "100/100" in bar  # tqdm's bar, range by range to the end
    call_command("recalculate_segments", if_none=True, stdout=out)
    assert "not recalculated" in out.getvalue()
    assert SegmentationRun.objects.count() == 1
