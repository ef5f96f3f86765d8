"""Shared fixtures: real SMTP sink, real Celery worker, database-kind markers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, RequestFactory

from loyalty.models import ProgramSettings
from tests.factories import MemberFactory, PartnerFactory, StaffUserFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent


def _is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_generate_tests(metafunc):
    if "race_round" in metafunc.fixturenames:
        from tests.concurrency import RACE_ROUNDS

        metafunc.parametrize("race_round", range(RACE_ROUNDS), ids=lambda n: f"round{n + 1}")


def pytest_collection_modifyitems(config, items):
    postgres = _is_postgres()
    redis = bool(settings.REDIS_URL)
    chromium = shutil.which("chromium") or Path("/usr/bin/chromium").exists()
    for item in items:
        if "postgres" in item.keywords and not postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))
        if "celery_worker" in item.keywords and not (postgres and redis):
            item.add_marker(
                pytest.mark.skip(
                    reason="needs PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)"
                )
            )
        if "browser" in item.keywords and not chromium and not os.environ.get("CI"):
            # In CI a missing browser is a failure, not a skip: .ci/run installs it.
            item.add_marker(pytest.mark.skip(reason="Debian's chromium is not installed"))


@pytest.fixture(autouse=True)
def _fresh_program_settings_cache():
    """The settings row, the earning terms, API keys, webhook subscriptions, live bonus offers
    and automation triggers are kept in each process's memory; each test starts from its own
    database (a flush sends no signals), and a worker process of the tests reloads them too."""
    from loyalty import process_cache

    process_cache.request_closed()
    process_cache.reload_everywhere()
    yield
    process_cache.reload_everywhere()


@pytest.fixture(autouse=True)
def _no_broker_pause_left_over():
    """A test that had the broker refuse a hand-off leaves the process's hand-off thread
    pausing for BROKER_PAUSE seconds (new messages left to the sweep, which tests do not run):
    the next test's messages would never reach its worker."""
    from loyalty.outbox import services as outbox

    outbox._hand_off_thread.refused_at = -outbox.BROKER_PAUSE
    yield
    outbox._hand_off_thread.refused_at = -outbox.BROKER_PAUSE


@pytest.fixture
def program(db) -> ProgramSettings:
    settings_row = ProgramSettings.load()
    settings_row.name = "Klantenclub"
    settings_row.points_name = "punten"
    settings_row.minimum_age = 16
    settings_row.excluded_domains = "staff.example"
    settings_row.save()
    return settings_row


@pytest.fixture
def partner(db):
    return PartnerFactory(name="Webshop")


@pytest.fixture
def member(db):
    return MemberFactory()


@pytest.fixture
def staff_user(db):
    return StaffUserFactory()


@pytest.fixture
def member_client(client, program):
    """The test client logged in as an active English-speaking member with 500 points."""
    from loyalty.services import points_credit

    user = UserFactory(email="noor@example.com")
    member = MemberFactory(user=user, email="noor@example.com", language="en")
    points_credit(member=member, points=500, reason="Welcome")
    client.force_login(user)
    client.member = member
    return client


class LoginThrottledClient(Client):
    """Django's test client, whose login() passes a request to authenticate() as a login page
    does: axes (the first authentication backend) refuses request-less logins, and so they go
    through the same login throttling as a member's."""

    def login(self, **credentials):
        credentials.setdefault("request", RequestFactory().post("/portal/login/"))
        return super().login(**credentials)


@pytest.fixture
def client() -> Client:
    return LoginThrottledClient()


# --- a real SMTP server --------------------------------------------------------------------


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list = field(default_factory=list)

    def wait_for(self, count: int = 1, timeout: float = 20.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def _smtp_server():
    """One aiosmtpd server for the session (a worker process is told its port at start)."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    sink = SmtpSink(host="127.0.0.1", port=_free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            message = message_from_bytes(envelope.content, policy=policy.default)
            sink.messages.append(message)
            return "250 OK"

    controller = Controller(Handler(), hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink(_smtp_server, settings):
    """A real SMTP server on localhost; Django sends to it through the SMTP backend."""
    _smtp_server.messages.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = _smtp_server.host
    settings.EMAIL_PORT = _smtp_server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    return _smtp_server


def message_text(message) -> str:
    """The plain-text body of a received e-mail."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


# --- a real Celery worker ------------------------------------------------------------------


@pytest.fixture(scope="session")
def _celery_worker_process(django_db_setup, _smtp_server):
    """A real `celery worker` process over Redis against the session's test database.

    It gets its own queue so parallel runs do not steal each other's tasks.
    """
    from loyalty.celery import app

    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = settings.DATABASES["default"]
    database_url = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalty.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "EMAIL_URL": f"smtp://{_smtp_server.host}:{_smtp_server.port}",
        "CELERY_QUEUE": queue,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "loyalty",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"{queue}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if app.control.ping(destination=[f"{queue}@{socket.gethostname()}"], timeout=0.5):
                break
            if process.poll() is not None:
                raise RuntimeError("celery worker exited: " + (process.stdout.read() or ""))
        else:
            raise RuntimeError("celery worker did not answer a ping within 60 s")
        yield queue
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def celery_worker(transactional_db, _celery_worker_process, smtp_sink, settings):
    """Send tasks to the real worker (not eagerly) for this test; its e-mail reaches smtp_sink."""
    from loyalty.celery import app

    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = _celery_worker_process
    try:
        yield _celery_worker_process
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy (for work done by another process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met within %.0f s" % timeout)


__all__ = ["broker_unreachable", "connection", "message_text", "wait_until"]


@contextmanager
def broker_unreachable():
    """The Celery app's broker pointed at a closed port (Redis down) inside the block, and back
    at the real Redis after it. Kombu keeps one pool per URL, so neither pool is closed."""
    from loyalty.celery import app

    def point_at(url: str) -> None:
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None

    real = app.conf.broker_url
    point_at(f"redis://127.0.0.1:{_free_port()}/0")
    try:
        yield
    finally:
        point_at(real)
