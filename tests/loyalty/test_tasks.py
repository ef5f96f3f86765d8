"""Scheduled tasks: eagerly on SQLite, and through a real Celery worker over Redis on PostgreSQL."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from loyalty import tasks
from loyalty.models import ConsistencyCheck, EntryKind, LedgerEntry, PointsAccount
from loyalty.services import points_credit
from tests.conftest import wait_until
from tests.factories import MemberFactory


def _member_with_expired_points(program):
    program.points_expiry_months = 1
    program.save()
    member = MemberFactory()
    with time_machine.travel(timezone.now() - dt.timedelta(days=90)):
        points_credit(member=member, points=120, reason="Old bonus")
    points_credit(member=member, points=30, reason="Fresh bonus")
    return member


@pytest.mark.django_db
def test_the_nightly_schedules_exist_for_beat():
    names = set(PeriodicTask.objects.values_list("task", flat=True))

    assert {
        "loyalty.tasks.expire_points",
        "loyalty.tasks.recalculate_tiers",
        "loyalty.tasks.check_ledger_consistency",
    } <= names


@pytest.mark.django_db
def test_the_expiry_task_expires_old_points(program):
    member = _member_with_expired_points(program)

    assert tasks.expire_points.delay().get() == 120

    assert PointsAccount.objects.get(member=member).balance == 30


@pytest.mark.celery_worker
def test_the_expiry_task_runs_in_a_real_worker_and_its_effect_is_in_postgresql(
    program, celery_worker
):
    member = _member_with_expired_points(program)

    tasks.expire_points.delay()

    entry = wait_until(
        lambda: LedgerEntry.objects.filter(account__member=member, kind=EntryKind.EXPIRE).first()
    )
    assert entry.points == -120
    assert PointsAccount.objects.get(member=member).balance == 30


@pytest.mark.celery_worker
def test_the_consistency_check_runs_in_a_real_worker(program, celery_worker):
    _member_with_expired_points(program)

    tasks.check_ledger_consistency.delay()

    check = wait_until(lambda: ConsistencyCheck.objects.first())
    assert check.accounts_checked == 1
    assert check.mismatches == []
