"""Helpers of the real-worker tests: set-based seeding and a `celery worker` process of the
test's own that it may SIGKILL and start again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid

from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Recipient, RecipientStatus
from tests.conftest import ROOT, wait_until
from tests.factories import SegmentationRunFactory


def seed_champions(count: int) -> None:
    """Active members with e-mail consent, scored champions in a current run: three
    INSERT ... SELECT over generate_series (PostgreSQL), a second or two for 10,000."""
    from members.models import ConsentRecord, Member
    from segmentation.models import MemberScore

    run = SegmentationRunFactory(is_current=True)
    now = timezone.now()
    template = Member(
        email="x@example.com",
        first_name="x",
        member_number="x",
        status="active",
        language="nl",
        enrolled_at=now,
        enrolment_source="import",
    )
    # Every concrete column with its Python default, so the INSERT needs no DB defaults.
    fields = [f for f in Member._meta.concrete_fields if not f.primary_key]
    columns, values, params = [], [], []
    special = {
        "email": "'w' || n || '@example.com'",
        "first_name": "'Member' || n",
        "member_number": "(900000000000 + n)::text",
        "language": "CASE WHEN n %% 3 = 0 THEN 'en' ELSE 'nl' END",
    }
    for field in fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.name in special:
            values.append(special[field.name])
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(getattr(template, field.attname), connection))
    member_table = connection.ops.quote_name(Member._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {member_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM generate_series(0, %s) AS n",
            [*params, count - 1],
        )
    ids = Member.objects.filter(email__startswith="w", email__endswith="@example.com")
    consent = ConsentRecord(member_id=0, channel="email", granted=True, source="import")
    _insert_select(ConsentRecord, consent, {"member_id": "m.id"}, ids)
    score = MemberScore(
        run=run,
        member_id=0,
        recency_days=5,
        frequency=3,
        monetary=100.0,
        r_score=5,
        f_score=4,
        m_score=4,
        segment="champions",
        quadrant="true_friends",
    )
    _insert_select(MemberScore, score, {"member_id": "m.id"}, ids)


def _insert_select(model, template, special: dict[str, str], members) -> None:
    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in special:
            values.append(special[field.attname])
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(getattr(template, field.attname), connection))
    select_sql, select_params = members.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} "
            f"({', '.join(columns)}) SELECT {', '.join(values)} FROM ({select_sql}) AS m",
            [*params, *select_params],
        )


class Worker:
    """A `celery worker` process of our own (as tests/conftest.py starts one), so that a test
    can kill it with SIGKILL and start another; its mail goes to the given SMTP port."""

    def __init__(self, queue: str, smtp_port: int, redis_url: str | None = None) -> None:
        self.queue = queue
        db = settings.DATABASES["default"]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "loyalty.settings.test",
            "DATABASE_URL": (
                f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@"
                f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
            ),
            "REDIS_URL": redis_url or settings.REDIS_URL,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "CELERY_QUEUE": queue,
        }
        self.process: subprocess.Popen | None = None

    @classmethod
    def new(cls, smtp_port: int, redis_url: str | None = None) -> Worker:
        return cls(f"test-campaigns-{uuid.uuid4().hex[:8]}", smtp_port, redis_url)

    def start(self) -> None:
        from loyalty.celery import app

        name = f"{self.queue}-{uuid.uuid4().hex[:4]}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "loyalty",
                "worker",
                "-Q",
                self.queue,
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                f"{name}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=0.5),
            timeout=60,
        )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def sent_count(campaign: Campaign) -> int:
    return Recipient.objects.filter(campaign=campaign, status=RecipientStatus.SENT).count()


def in_flight(campaign: Campaign):
    return Recipient.objects.filter(
        campaign=campaign, status__in=[RecipientStatus.CLAIMED, RecipientStatus.SENDING]
    )
