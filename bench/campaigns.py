"""Benchmark: sending a campaign through the claim/record protocol and a real Celery worker,
against rendering and sending the same messages over one SMTP connection; and freezing a
500,000-member audience at the 1M-member volume.

    .venv/bin/python bench/campaigns.py [--members 10000] [--rounds 1]
        [--database loyalty_bench_campaigns] [--keep] [--redis redis://127.0.0.1:6379/0]
        [--freeze-database loyalty_bench] [--freeze-rounds 1] [--segment] [--skip-freeze]
        [--skip-send] [--profile DIR]

(a) baseline: in this process, the members' messages rendered (the same personalisation,
    layout, CSS inlining and link tracking as a campaign) and handed to one SMTP connection
    with Django's `send_messages`, 200 at a time, to a local aiosmtpd sink (a process of its
    own that counts what it accepts).
(b) the full pipeline: a campaign to the same members (holdout 0) sent by one `celery worker`
    process (solo pool, as the tests start it) over Redis to the same sink: from "send now"
    (freezing the audience) to the campaign's `sent`, every message counted at the sink.
    Target: (b) >= 0.8 x the throughput of (a).
(c) on the 1M-member benchmark database (bench/seed_large.py --keep): "send now" for a
    campaign whose audience is at least 500,000 members (the largest RFM segments of the current
    run, each member with an e-mail consent), i.e. the transition, the INSERT ... SELECT of the
    audience, the holdout draw and the frequency cap, and the deferred constraint checks its
    commit would run (`SET CONSTRAINTS ALL IMMEDIATE`: a rollback skips them), in one
    transaction that is rolled back. Prints the wall time, the CPU time of the database
    backend (what the freeze costs whatever else runs on a shared machine), the process's
    peak RSS before and after, and the load average. `--segment` first runs a segmentation
    if the database has no current run (kept: it is what the benchmark database lacks, not
    junk). Target: <= 10 s.

(a) and (b) use a database of their own (created, migrated and seeded with --members members by
set-based INSERTs, dropped afterwards unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SINK = r"""
import json, signal, sys, time, threading
from aiosmtpd.controller import Controller

port, out = int(sys.argv[1]), sys.argv[2]
ids = []

class Handler:
    async def handle_DATA(self, server, session, envelope):
        content = envelope.content
        start = content.find(b"Message-ID:")
        ids.append(content[start:content.find(b"\n", start)].strip() if start >= 0 else b"")
        return "250 OK"

def write(final=False):
    with open(out + ".tmp", "w") as f:
        json.dump({"count": len(ids), "distinct": len(set(ids)) if final else None}, f)
    import os; os.replace(out + ".tmp", out)

controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
write()
while not stop.wait(0.1):
    write()
controller.stop()
write(final=True)
"""


# The worker under cProfile (--profile): the same `celery worker` command line, with each task
# run profiled and the stats written when the worker shuts down (SIGTERM: warm shutdown).
PROFILED_WORKER = r"""
import cProfile, os, sys
from celery.signals import task_postrun, task_prerun, worker_shutdown

profile = cProfile.Profile()
task_prerun.connect(lambda **kwargs: profile.enable(), weak=False)
task_postrun.connect(lambda **kwargs: profile.disable(), weak=False)
worker_shutdown.connect(lambda **kwargs: profile.dump_stats(os.environ["WORKER_PROFILE"]), weak=False)
from celery.__main__ import main
sys.argv = ["celery", *sys.argv[1:]]
main()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    def __init__(self) -> None:
        self.port = _free_port()
        self.out = Path(tempfile.mkdtemp()) / "sink.json"
        self.process = subprocess.Popen(
            [sys.executable, "-c", SINK, str(self.port), str(self.out)], cwd=ROOT
        )
        while not self.out.exists():
            time.sleep(0.05)

    def state(self) -> dict:
        return json.loads(self.out.read_text())

    def count(self) -> int:
        return self.state()["count"]

    def stop(self) -> dict:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return self.state()


def _cpu_seconds(pids) -> float:
    """User + system CPU time of these processes so far (Linux /proc): a cost per message that
    the other processes on the shared machine do not change, unlike the wall-clock time."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _backend_pids() -> list[int]:
    """The PostgreSQL server processes of this database's connections."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [pid for (pid,) in cursor.fetchall()]


class CpuMeter:
    """CPU seconds used by a set of processes (and the database's backends) from the first
    sample to the last; a backend first seen later was started since, so all its CPU counts. A
    backend that ends between two samples loses what it used after the earlier one."""

    def __init__(self, pids) -> None:
        self.pids = list(pids)
        self.seen: dict[int, float] = {}
        self.first: dict[int, float] = {}

    def sample(self) -> None:
        started = bool(self.first)
        for pid in {*self.pids, *_backend_pids()}:
            used = _cpu_seconds([pid])
            self.first.setdefault(pid, 0.0 if started else used)
            self.seen[pid] = used

    def used(self) -> float:
        self.sample()
        return sum(self.seen[pid] - self.first[pid] for pid in self.seen)


def _psql(database: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-qc", sql], check=True
    )


def _setup_django(database: str, redis_url: str, email_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "loyalty.settings.local"
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    os.environ["REDIS_URL"] = redis_url
    os.environ["EMAIL_URL"] = email_url
    os.environ["DEBUG"] = "false"
    import django

    django.setup()


def _seed(count: int) -> None:
    """Active members with e-mail consent, champions of a current run (set-based)."""
    from django.db import connection
    from django.utils import timezone

    from members.models import ConsentRecord, Member
    from segmentation.models import MemberScore, SegmentationRun

    run = SegmentationRun.objects.create(is_current=True, status="done")
    template = Member(
        email="x",
        first_name="x",
        member_number="x",
        status="active",
        language="nl",
        enrolled_at=timezone.now(),
        enrolment_source="import",
    )
    special = {
        "email": "'bench' || n || '@example.com'",
        "first_name": "'Member' || n",
        "member_number": "(800000000000 + n)::text",
        "language": "CASE WHEN n %% 3 = 0 THEN 'en' ELSE 'nl' END",
    }
    _insert(Member, template, special, f"FROM generate_series(0, {count - 1}) AS n")
    members = "FROM members_member AS m"
    consent = ConsentRecord(member_id=0, channel="email", granted=True, source="import")
    _insert(ConsentRecord, consent, {"member_id": "m.id"}, members)
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
    _insert(MemberScore, score, {"member_id": "m.id"}, members)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _insert(model, template, special: dict[str, str], source: str) -> None:
    from django.db import connection

    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in special or field.name in special:
            values.append(special.get(field.attname, special.get(field.name)))
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(getattr(template, field.attname), connection))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} "
            f"({', '.join(columns)}) SELECT {', '.join(values)} {source}",
            params,
        )


def _message():
    from campaigns.models import Message

    body = (
        "<style>.lead{color:#0b5c4a}</style><p class='lead'>{greeting} {{ member.first_name }}, "
        "{balance} {{ points.balance }}.</p>"
        "{% for reward in rewards %}<p>{{ reward.name }}: {{ reward.points }}</p>{% endfor %}"
    )
    return Message.objects.create(
        name=f"Bench {uuid.uuid4().hex[:6]}",
        subject_nl="Hallo {{ member.first_name }}",
        subject_en="Hello {{ member.first_name }}",
        preheader_nl="Je hebt {{ points.balance }} {{ points.name }}",
        preheader_en="You have {{ points.balance }} {{ points.name }}",
        html_nl=body.replace("{greeting}", "Hoi").replace("{balance}", "je saldo is"),
        html_en=body.replace("{greeting}", "Hi").replace("{balance}", "your balance is"),
        text_nl="Hoi {{ member.first_name }}, je saldo is {{ points.balance }}.",
        text_en="Hi {{ member.first_name }}, your balance is {{ points.balance }}.",
    )


def baseline(message, sink: Sink) -> tuple[float, int]:
    """(a): render every member's message and send them over one connection, 200 at a time."""
    from django.core.mail import get_connection

    from campaigns.personalisation import member_facts
    from campaigns.rendering import message_render
    from campaigns.services import email_build
    from campaigns.tokens import unsubscribe_url
    from campaigns.tracking import message_track
    from members.models import Member

    before = sink.count()
    meter = CpuMeter([os.getpid()])
    meter.sample()
    started = time.perf_counter()
    members = Member.objects.filter(email__startswith="bench").order_by("pk").iterator(2000)
    batch = []
    sent = 0
    with get_connection() as smtp:
        for member in members:
            url = unsubscribe_url(member_id=member.pk, campaign_id=0)
            rendered = message_render(
                message=message,
                facts=member_facts(member=member),
                preferred_language=member.language,
                unsubscribe_url=url,
            )
            rendered = message_track(rendered=rendered, recipient_id=member.pk, unsubscribe_url=url)
            batch.append(
                email_build(
                    rendered=rendered,
                    to=member.email,
                    unsubscribe=url,
                    headers={"Message-ID": f"<bench-{member.pk}@example.com>"},
                    connection=smtp,
                )
            )
            if len(batch) == 200:
                sent += smtp.send_messages(batch)
                batch = []
        if batch:
            sent += smtp.send_messages(batch)
    elapsed = time.perf_counter() - started
    cpu = meter.used()
    # The sink writes its count every 0.1 s: wait for it to show what the server accepted.
    deadline = time.monotonic() + 5
    while sink.count() - before < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    sent = sink.count() - before
    print(f"    (a) CPU: {cpu * 1000 / max(sent, 1):.1f} ms a message (this process + PostgreSQL)")
    return elapsed, sent


def pipeline(message, sink: Sink, worker_env: dict, members: int) -> tuple[float, int, float]:
    """(b): one campaign to every member, sent by a real worker; time from send now to sent."""
    from django.db.models import Max, Min
    from django.utils import timezone

    from campaigns.models import Campaign, CampaignSettings, CampaignStatus, Recipient
    from campaigns.services import campaign_send_now
    from loyalty.celery import app

    queue = worker_env["CELERY_QUEUE"]
    name = f"{queue}@{socket.gethostname()}"
    profiled = bool(worker_env.get("WORKER_PROFILE"))
    launcher = ["-c", PROFILED_WORKER] if profiled else ["-m", "celery"]
    worker = subprocess.Popen(
        [
            sys.executable, *launcher, "-A", "loyalty", "worker", "-Q", queue,
            "--pool", "solo", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--hostname", name,
        ],
        cwd=ROOT,
        env=worker_env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[name], timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the worker did not start")
        app.conf.task_default_queue = queue
        CampaignSettings.objects.update_or_create(pk=1, defaults={"frequency_cap": 100})
        campaign = Campaign.objects.create(
            name=f"Bench {uuid.uuid4().hex[:6]}",
            message=message,
            segments=["champions"],
            holdout_percent=0,
        )
        before = sink.count()
        meter = CpuMeter([worker.pid])
        meter.sample()
        started = time.perf_counter()
        started_at = timezone.now()
        campaign_send_now(campaign=campaign, by=None)
        frozen = time.perf_counter() - started
        polls = 0
        while Campaign.objects.get(pk=campaign.pk).status != CampaignStatus.SENT:
            time.sleep(0.05)
            polls += 1
            if polls % 20 == 0:
                meter.sample()  # the worker's database connection may change between tasks
        while sink.count() - before < members and time.perf_counter() - started < 3600:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        cpu = meter.used()
        # Where the time went: until the first `sent`, between the first and the last, after.
        span = Recipient.objects.filter(campaign=campaign).aggregate(
            first=Min("sent_at"), last=Max("sent_at")
        )
        first = (span["first"] - started_at).total_seconds()
        last = (span["last"] - started_at).total_seconds()
        print(
            f"    (b) phases: first sent after {first:.2f} s, sending {last - first:.1f} s, "
            f"last sent to done {elapsed - last:.2f} s; CPU: "
            f"{cpu * 1000 / max(sink.count() - before, 1):.1f} ms a message (worker + PostgreSQL)"
        )
        return elapsed, sink.count() - before, frozen
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def freeze(args) -> None:
    """(c), in a process of its own on the 1M-member database."""
    from django.core.management import call_command
    from django.db import transaction
    from django.db.models import Count

    from campaigns.models import Campaign, Recipient
    from campaigns.services import campaign_send_now
    from members.models import ConsentChannel
    from members.selectors import consenting_member_ids
    from segmentation.models import MemberScore
    from segmentation.selectors import current_run, members_in_segments

    call_command("migrate", verbosity=0)  # the benchmark database follows the code's schema
    if current_run() is None:
        if not args.segment:
            raise SystemExit("no current segmentation run: rerun with --segment")
        from segmentation.services import recalculate

        started = time.perf_counter()
        run = recalculate()
        print(f"segmentation run {run.pk}: {run.status} in {time.perf_counter() - started:.1f} s")
    from django.db import connection

    with connection.cursor() as cursor:  # statistics only (a fresh run's scores have none)
        cursor.execute("ANALYZE segmentation_memberscore, members_consentrecord, members_member")
    consenting = consenting_member_ids(channel=ConsentChannel.EMAIL)
    audience = members_in_segments(segments=_all_segments(), all_at_once=True).filter(
        pk__in=consenting
    )
    sizes = (
        MemberScore.objects.filter(run=current_run(), member_id__in=audience.values("pk"))
        .values("segment")
        .annotate(n=Count("pk"))
    )
    print(f"consenting members per segment: {[(r['segment'], r['n']) for r in sizes]}")
    chosen, total = [], 0
    for row in sorted(sizes, key=lambda r: -r["n"]):
        if total >= args.audience:
            break
        chosen.append(row["segment"])
        total += row["n"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    for number in range(1, args.freeze_rounds + 1):
        load = _loadavg()
        rss_before = _peak_rss_mb()
        cpu_before = _cpu_seconds(backend), time.process_time()
        with transaction.atomic():
            message = _message()
            campaign = Campaign.objects.create(
                name="Bench freeze", message=message, segments=chosen
            )
            started = time.perf_counter()
            campaign_send_now(campaign=campaign, by=None)
            sent_now = time.perf_counter() - started
            # What the commit would still do: the deferred foreign-key checks of the new rows
            # (a rollback skips them, so without this the figure leaves them out).
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            elapsed = time.perf_counter() - started
            cpu = _cpu_seconds(backend) - cpu_before[0], time.process_time() - cpu_before[1]
            frozen = (
                Recipient.objects.filter(campaign=campaign).values("status").annotate(n=Count("pk"))
            )
            by_status = {row["status"]: row["n"] for row in frozen}
            transaction.set_rollback(True)  # nothing stays in the benchmark database
        total = sum(by_status.values())
        verdict = "met" if elapsed <= 10 and total >= args.audience else "NOT met"
        print(
            f"(c) round {number}: freeze of {total:,} recipients ({by_status}; segments "
            f"{', '.join(chosen)}) in {elapsed:.2f} s (send now {sent_now:.2f} s + deferred "
            f"checks {elapsed - sent_now:.2f} s); CPU time of the database backend "
            f"{cpu[0]:.2f} s, of this process {cpu[1]:.2f} s; peak RSS {rss_before:.0f} -> "
            f"{_peak_rss_mb():.0f} MB; load {load} -> {_loadavg()}  target <= 10 s for >= "
            f"{args.audience:,}: {verdict}"
        )


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process on this machine: what the freeze costs whatever
    else runs (the wall time on a shared machine is several times that)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _all_segments() -> list[str]:
    from segmentation.models import Segment

    return [value for value, _label in Segment.choices]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--database", default="loyalty_bench_campaigns")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--freeze-database", default="loyalty_bench")
    parser.add_argument("--audience", type=int, default=500_000)
    parser.add_argument("--freeze-rounds", type=int, default=1)
    parser.add_argument("--segment", action="store_true")
    parser.add_argument("--skip-freeze", action="store_true")
    parser.add_argument("--skip-send", action="store_true")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="cProfile (a) in this process and (b) in the worker: DIR/baseline.prof, worker.prof",
    )
    parser.add_argument("--freeze-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.freeze_only:
        _setup_django(args.freeze_database, args.redis, "dummymail://")
        freeze(args)
        return
    if not args.skip_send:
        send(args)
    if not args.skip_freeze:
        command = [sys.executable, __file__, "--freeze-only", "--redis", args.redis]
        command += ["--freeze-database", args.freeze_database, "--audience", str(args.audience)]
        command += ["--freeze-rounds", str(args.freeze_rounds)]
        subprocess.run(command + (["--segment"] if args.segment else []), check=True, cwd=ROOT)


def send(args) -> None:
    sink = Sink()
    email_url = f"smtp://127.0.0.1:{sink.port}"
    _psql("postgres", f"DROP DATABASE IF EXISTS {args.database}")
    _psql("postgres", f"CREATE DATABASE {args.database}")
    try:
        _setup_django(args.database, args.redis, email_url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        _seed(args.members)
        print(f"seeded {args.members:,} members in {time.perf_counter() - started:.1f} s")
        message = _message()
        worker_env = {
            **os.environ,
            "CELERY_QUEUE": f"bench-campaigns-{uuid.uuid4().hex[:8]}",
            "WORKER_PROFILE": str(Path(args.profile) / "worker.prof") if args.profile else "",
        }
        ratios = []
        for number in range(1, args.rounds + 1):
            if args.profile:
                import cProfile

                profile = cProfile.Profile()
                base_s, base_n = profile.runcall(baseline, message, sink)
                profile.dump_stats(Path(args.profile) / "baseline.prof")
            else:
                base_s, base_n = baseline(message, sink)
            pipe_s, pipe_n, frozen_s = pipeline(message, sink, worker_env, args.members)
            a, b = base_n / base_s, pipe_n / pipe_s
            ratios.append(b / a)
            print(
                f"round {number}: (a) baseline {base_n:,} messages in {base_s:.1f} s = {a:.0f}/s; "
                f"(b) pipeline {pipe_n:,} in {pipe_s:.1f} s (freeze {frozen_s:.2f} s) = "
                f"{b:.0f}/s; (b)/(a) = {b / a:.2f}  target >= 0.8: "
                f"{'met' if b / a >= 0.8 else 'NOT met'}"
            )
        connection.close()
    finally:
        final = sink.stop()
        print(f"sink: {final['count']:,} messages, {final['distinct']:,} distinct Message-IDs")
        if not args.keep:
            _psql("postgres", f"DROP DATABASE IF EXISTS {args.database}")


if __name__ == "__main__":
    main()
