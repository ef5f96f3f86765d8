"""Fixtures of the campaigns tests."""

import pytest
from django.contrib.auth.models import Group

from campaigns.models import Message
from tests.factories import StaffUserFactory


@pytest.fixture
def message(db):
    return Message.objects.create(
        name="Spring",
        subject_nl="Hallo {{ member.first_name }}",
        subject_en="Hello {{ member.first_name }}",
        preheader_nl="Je hebt {{ points.balance }} {{ points.name }}",
        preheader_en="You have {{ points.balance }} {{ points.name }}",
        html_nl="<style>.lead{color:#0b5c4a}</style><p class='lead'>Hoi {{ member.first_name }}, "
        "je saldo is {{ points.balance }}.</p>"
        "{% for reward in rewards %}<p>{{ reward.name }}: {{ reward.points }}</p>{% endfor %}",
        html_en="<style>.lead{color:#0b5c4a}</style><p class='lead'>Hi {{ member.first_name }}, "
        "your balance is {{ points.balance }}.</p>"
        "{% for reward in rewards %}<p>{{ reward.name }}: {{ reward.points }}</p>{% endfor %}",
        text_nl="Hoi {{ member.first_name }}, je saldo is {{ points.balance }}.",
        text_en="Hi {{ member.first_name }}, your balance is {{ points.balance }}.",
    )


@pytest.fixture
def staff_in(db):
    def make(group: str):
        user = StaffUserFactory()
        user.groups.add(Group.objects.get(name=group))
        return user

    return make


@pytest.fixture(autouse=True)
def english(settings):
    """Admin pages in English unless a test says otherwise (the program's default is Dutch)."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def current_run(db):
    from tests.factories import SegmentationRunFactory

    return SegmentationRunFactory(is_current=True)


@pytest.fixture
def scored(current_run):
    """Make scored members: `scored(n, segment=..., consent=True, **member fields)`."""
    from tests.factories import ConsentRecordFactory, MemberFactory, MemberScoreFactory

    def make(count: int = 1, *, segment: str = "champions", consent: bool = True, **fields):
        members = MemberFactory.create_batch(count, **fields)
        for member in members:
            MemberScoreFactory(run=current_run, member=member, segment=segment)
            if consent is not None:
                ConsentRecordFactory(member=member, channel="email", granted=consent)
        return members

    return make


@pytest.fixture
def campaign_of(message, program):
    from campaigns.models import Campaign

    def make(**fields):
        fields.setdefault("name", "Spring campaign")
        fields.setdefault("segments", ["champions"])
        return Campaign.objects.create(message=message, **fields)

    return make


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run `fn(**kwargs)` and then its after-commit hand-offs (the send task, eagerly)."""

    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return run


class FlakySink:
    """A real SMTP server that refuses some messages: `transient` (451) for a share of first
    attempts, `permanent` (550) for listed addresses; `received` holds what it accepted."""

    def __init__(self) -> None:
        self.received: list = []
        self.refused = 0
        self.transient_share = 0.0
        self.permanent: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._count = 0
        self.refuse_sender = ""  # e.g. "550 5.7.1 Sender rejected": refuse every MAIL FROM

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.permanent:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.content, policy=policy.default)
        key = str(message["Message-ID"])
        self._count += 1
        first = key not in self._attempts
        self._attempts[key] = self._attempts.get(key, 0) + 1
        # Every n-th first attempt fails once (deterministic share).
        if first and self.transient_share and self._count % round(1 / self.transient_share) == 0:
            self.refused += 1
            return "451 4.3.0 Try again later"
        self.received.append(message)
        return "250 OK"


@pytest.fixture
def flaky_sink(settings):
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = FlakySink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    sink.port = port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield sink
    finally:
        controller.stop()


class PrivateRedis:
    """A redis-server of this test's own on a free port (never the shared one), which the test
    may kill and start again; nothing is persisted, so a restart loses every queued task."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        import shutil
        import subprocess
        import time

        import redis

        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis():
    import shutil

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()
