"""Benchmark: purchase POSTs through the partner API under load, against a bare INSERT endpoint.

    DATABASE_URL is not needed: the script creates (and by default drops) its own database.
    Needs `wrk` (Debian: apt-get install -y wrk; installed by the script when run as root).
    .venv/bin/python bench/api.py [--workers 5] [--worker-class gthread] [--connections 16]
                                  [--duration 20] [--rounds 3] [--members 10000]
                                  [--database loyalty_bench_api] [--keep] [--profile]

Seeds a fresh PostgreSQL database with the demo generator (members with accounts, tiers and
history), makes a partner with a key, starts gunicorn with production settings (bench/
api_settings.py: persistent connections, Redis cache for the throttle) and drives it with wrk
(one Lua script: a unique external_id per request, a random member from the pool). Each round
measures the baseline, a bare DRF endpoint that only INSERTs a row (bench/api_urls.py), then
POST /api/v1/purchases/, for --duration seconds each, after a warm-up of both. Prints
throughput, p50/p99 latency, errors (any non-2xx answer, connect/read/write errors, timeouts),
the ratio to the baseline per round and the medians; then the time of a 1,000-purchase batch
POST (median of --batch-rounds). Before the load, in this process: the SQL statements one purchase
costs, and the CPU time per request of Django and of its PostgreSQL backend, one request at a
time (baseline and purchase), which the machine's other load changes least.
Targets (2-core reference machine): >= 800 purchases/s, p99 <= 100 ms, 0 errors,
>= 0.6 x the baseline's throughput; a 1,000-purchase batch in <= 1 s.
`--profile` samples the gunicorn workers with py-spy (pip install py-spy; not a project
dependency) during one more purchase round and prints where the time goes.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import itertools
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
RUN_NUMBERS = itertools.count(1)

LUA = r"""
local members = {%(members)s}
local threads = {}
local counter = 0
failures = 0  -- global: done() reads it from each thread
local shown = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  run = args[1]  -- unique per wrk run, so every external_id is new
  math.randomseed(os.time() * 1000 + thread_number)
end

function request()
  counter = counter + 1
  local cents = math.random(195, 25000)
  local body = string.format(
    '{"external_id":"%%s-%%d-%%d","member_number":"%%s","amount":"%%d.%%02d","channel":"store"}',
    run, thread_number, counter, members[math.random(#members)], math.floor(cents / 100), cents %% 100)
  return wrk.format(nil, "%(path)s", nil, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    failures = failures + 1
    if shown < 3 then
      shown = shown + 1
      io.stderr:write("non-2xx " .. status .. ": " .. string.sub(body, 1, 300) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "non2xx": %%d, "socket_errors": %%d, ' ..
    '"timeouts": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d}\n',
    summary.requests, summary.duration, failed, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it (apt-get install -y wrk)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
        found = shutil.which("wrk")
    if not found:
        sys.exit("This benchmark needs wrk: run `sudo apt-get install -y wrk` (Debian) first.")
    return found


def load_average() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def wait_until_serving(port: int, process: subprocess.Popen, seconds: float = 120) -> None:
    """Until the baseline endpoint answers (the workers have booted), or give up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn stopped (exit {process.returncode}); see its output above.")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/bench/baseline/")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"gunicorn did not answer on port {port} within {seconds:.0f} s")


def run_wrk(wrk: str, args, *, script: Path, seconds: int) -> dict:
    command = [
        wrk,
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{args.port}",
        "--",
        f"{args.run_tag}-{next(RUN_NUMBERS)}",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    for line in done.stderr.splitlines()[:3]:
        print(f"    wrk: {line}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    if not result["requests"]:
        sys.exit(f"no answer within {seconds} s: is gunicorn serving?")
    result["per_second"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = result["non2xx"] + result["socket_errors"] + result["timeouts"]
    return result


def lua_script(directory: Path, *, name: str, path: str, members, key: str) -> Path:
    auth = f'wrk.headers["Authorization"] = "Api-Key {key}"' if key else ""
    script = directory / f"{name}.lua"
    script.write_text(
        LUA
        % {
            "members": ",".join(f'"{number}"' for number in members),
            "auth": auth,
            "path": path,
        }
    )
    return script


def post_batch(port: int, key: str, items: list[dict]) -> tuple[float, dict]:
    body = json.dumps({"purchases": items})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    connection.request(
        "POST",
        "/api/v1/purchases/batch/",
        body=body,
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
    )
    response = connection.getresponse()
    answer = response.read()
    seconds = time.perf_counter() - started
    connection.close()
    if response.status != 200:
        sys.exit(f"batch answered {response.status}: {answer[:500]!r}")
    return seconds, json.loads(answer)


def profile_summary(raw: Path, top: int = 25) -> None:
    """Print py-spy's collapsed stacks as inclusive and own time per function (ours first)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _space, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if "(" in frame]
        if not frames:
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    if not total:
        print("  no samples")
        return
    print(f"  {total:,} samples; inclusive share of the workers' time, top {top}:")
    for frame, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame[:150]}")
    print(f"  own time (the frame itself), top {top}:")
    for frame, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame[:150]}")


def cpu_per_request(client, path: str, connection, pool, *, tag: str, count: int):
    """Mean CPU milliseconds per POST of this process and of its PostgreSQL backend, and wall."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    ticks_per_second = os.sysconf("SC_CLK_TCK")

    def backend_seconds() -> float:  # utime + stime of the backend process (Linux, same host)
        fields = Path(f"/proc/{backend}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / ticks_per_second

    wall, app, database = time.perf_counter(), time.process_time(), backend_seconds()
    for number in range(count):
        body = {
            "external_id": f"{tag}-{path}-{number}",
            "member_number": pool[(number * 37) % len(pool)],
            "amount": "42.50",
        }
        answer = client.post(path, body, format="json")
        assert answer.status_code == 201, answer.content
    wall, app = time.perf_counter() - wall, time.process_time() - app
    database = backend_seconds() - database
    return 1000 * app / count, 1000 * database / count, 1000 * wall / count


def median_row(label: str, rounds: list[dict]) -> dict:
    return {
        "label": label,
        "per_second": statistics.median(r["per_second"] for r in rounds),
        "p50_us": statistics.median(r["p50_us"] for r in rounds),
        "p99_us": statistics.median(r["p99_us"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "requests": sum(r["requests"] for r in rounds),
    }


def print_row(label: str, row: dict) -> None:
    print(
        f"  {label:<28}{row['per_second']:10,.0f}/s {row['p50_us'] / 1000:8.1f} ms "
        f"{row['p99_us'] / 1000:8.1f} ms {row['errors']:8,d} {row['requests']:10,d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000, help="Members seeded and posted.")
    parser.add_argument("--duration", type=int, default=20, help="Seconds per measured run.")
    parser.add_argument("--warmup", type=int, default=5, help="Seconds of warm-up per endpoint.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=5, help="gunicorn worker processes.")
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=1, help="Threads per gthread worker.")
    parser.add_argument("--connections", type=int, default=16, help="wrk's open connections.")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--cpu-requests", type=int, default=300, help="For the CPU figures.")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database", default="loyalty_bench_api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--settings",
        default="bench.api_settings",
        help="Settings module (on PYTHONPATH) for gunicorn and this script, to compare variants.",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--profile", action="store_true", help="py-spy one more purchase round.")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    wrk = ensure_wrk()
    admin = ["psql", "-h", args.host, "-U", "postgres", "-d", "postgres", "-qc"]
    subprocess.run([*admin, f"DROP DATABASE IF EXISTS {args.database}"], check=True)
    subprocess.run([*admin, f"CREATE DATABASE {args.database}"], check=True)
    run_tag = args.run_tag = f"B{int(time.time())}"
    queue = f"bench_api_{run_tag}"  # Celery messages of this run, removed at the end
    os.environ.update(
        DJANGO_SETTINGS_MODULE=args.settings,
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        DATABASE_URL=f"postgres://postgres@{args.host}:5432/{args.database}",
        REDIS_URL=args.redis,
        EMAIL_URL="smtp://127.0.0.1:1",  # never reached: e-mails go through the outbox
        SECURE_SSL_REDIRECT="false",
        CONN_MAX_AGE="600",
        CELERY_QUEUE=queue,
        LOG_LEVEL="WARNING",
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from bench.api_urls import BASELINE_TABLE
    from loyalty import demo
    from loyalty.models import Partner, Purchase
    from loyalty.services import EARNING_STATUSES, api_key_create
    from members.models import Member

    gunicorn = None
    print(f"load average at the start: {load_average()} (1/5/15 min, {os.cpu_count()} cores)")
    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        demo.seed(
            demo.DemoSpec(
                seed=args.seed,
                members=args.members,
                purchases=args.members * 5,
                lines=False,
                monthly_lots=True,
            ),
            use_copy=True,
        )
        partner = Partner.objects.create(
            name="Bench till", kind="pos", api_requests_per_minute=1_000_000_000
        )
        _record, key = api_key_create(partner=partner, name="bench", scopes=["purchases:write"])
        pool = list(
            Member.objects.filter(status__in=EARNING_STATUSES)
            .order_by("pk")
            .values_list("member_number", flat=True)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE {BASELINE_TABLE} (id bigserial PRIMARY KEY, "
                "external_id varchar(100) NOT NULL UNIQUE, member_number varchar(20), "
                "amount numeric(12, 2), created_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor.execute("VACUUM ANALYZE")
        print(
            f"seeded {Member.objects.count():,} members ({len(pool):,} who earn), "
            f"{Purchase.objects.count():,} purchases in {time.perf_counter() - started:.1f} s"
        )

        # What one purchase costs the database, through the same view, in this process.
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        statements = []
        for number in range(3):
            body = {"external_id": f"Q-{number}", "member_number": pool[number], "amount": "42.50"}
            with CaptureQueriesContext(connection) as queries:
                answer = client.post("/api/v1/purchases/", body, format="json")
            assert answer.status_code == 201, answer.content
            statements.append(len(queries.captured_queries))
        print(f"SQL statements per purchase (3 posts, the first also opens the key): {statements}")
        # CPU per request, one at a time in this process: what load on the machine changes least.
        for name, path, caller in (
            ("baseline", "/bench/baseline/", APIClient()),
            ("purchases", "/api/v1/purchases/", client),
        ):
            app, database, wall = cpu_per_request(
                caller, path, connection, pool, tag=f"{run_tag}-CPU", count=args.cpu_requests
            )
            print(
                f"CPU per request, {name:<9} (in-process, {args.cpu_requests} requests): "
                f"{app:5.2f} ms Django + {database:4.2f} ms PostgreSQL (wall {wall:5.2f} ms): "
                f"at most {2000 / (app + database):,.0f}/s on 2 cores"
            )
        connections.close_all()

        scripts = {
            name: lua_script(
                workdir,
                name=name,
                path=path,
                members=pool,
                key=key if name == "purchases" else "",
            )
            for name, path in (
                ("baseline", "/bench/baseline/"),
                ("purchases", "/api/v1/purchases/"),
            )
        }
        gunicorn_command = [
            str(VENV_BIN / "gunicorn"),
            "loyalty.wsgi:application",
            "--chdir",
            str(ROOT),
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--backlog",
            "2048",
            "--preload",  # the workers start ready: the application is loaded before the fork
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ]
        print("gunicorn: " + " ".join(gunicorn_command[1:]))
        gunicorn = subprocess.Popen(gunicorn_command, start_new_session=True)
        wait_until_serving(args.port, gunicorn)

        print(f"warm-up: {args.warmup} s of each endpoint", flush=True)
        for name in ("baseline", "purchases"):
            run_wrk(wrk, args, script=scripts[name], seconds=args.warmup)
        rounds: dict[str, list[dict]] = {"baseline": [], "purchases": []}
        print(
            f"\n{args.rounds} rounds of {args.duration} s each, {args.connections} connections, "
            f"{args.workers} {args.worker_class} workers x {args.threads} threads"
        )
        print(
            f"  {'':<28}{'throughput':>12} {'p50':>11} {'p99':>11} {'errors':>8} {'requests':>10}"
        )
        for number in range(1, args.rounds + 1):
            for name in ("baseline", "purchases"):
                result = run_wrk(wrk, args, script=scripts[name], seconds=args.duration)
                rounds[name].append(result)
                print_row(f"round {number} {name}", result)
            ratio = rounds["purchases"][-1]["per_second"] / rounds["baseline"][-1]["per_second"]
            print(f"  round {number} ratio purchases/baseline {ratio:.2f} x", flush=True)

        baseline = median_row("baseline", rounds["baseline"])
        purchases = median_row("purchases", rounds["purchases"])
        ratios = [
            p["per_second"] / b["per_second"]
            for p, b in zip(rounds["purchases"], rounds["baseline"], strict=True)
        ]
        print("\nmedians of the rounds (errors and requests: totals)")
        print_row("baseline (bare INSERT)", baseline)
        print_row("purchases", purchases)
        print(
            f"  ratio purchases/baseline, median of the rounds: {statistics.median(ratios):.2f} x"
        )

        batch_seconds = []
        for number in range(args.batch_rounds):
            items = [
                {
                    "external_id": f"{run_tag}-BATCH-{number}-{index}",
                    "member_number": pool[(number * args.batch_size + index * 7) % len(pool)],
                    "amount": f"{10 + index % 90}.{index % 100:02d}",
                }
                for index in range(args.batch_size)
            ]
            seconds, answer = post_batch(args.port, key, items)
            if answer["created"] != args.batch_size:
                sys.exit(f"batch created {answer['created']} of {args.batch_size}: {answer}")
            batch_seconds.append(seconds)
        batch = statistics.median(batch_seconds)
        print(
            f"\nbatch of {args.batch_size:,} purchases in one POST: median {batch:.2f} s of "
            f"{', '.join(f'{s:.2f}' for s in batch_seconds)}"
        )

        if args.profile:
            py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
            raw = workdir / "profile.txt"
            print(f"\nprofiling one more {args.duration} s purchase round with py-spy ...")
            recorder = subprocess.Popen(
                [py_spy, "record", "--pid", str(gunicorn.pid), "--subprocesses", "--format",
                 "raw", "--rate", "200", "--duration", str(args.duration + 2), "--output",
                 str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1)
            profiled = run_wrk(wrk, args, script=scripts["purchases"], seconds=args.duration)
            recorder.wait()
            print_row("purchases while profiled", profiled)
            profile_summary(raw)

        posted = sum(r["requests"] - r["non2xx"] for r in rounds["purchases"])
        print(
            f"\npurchases in the database: {Purchase.objects.filter(partner=partner).count():,} "
            f"(2xx answers in the measured rounds: {posted:,}, plus warm-up, batches, profile)"
        )
        print(f"load average at the end: {load_average()}")
        targets = [
            (">= 800 purchases/s", purchases["per_second"] >= 800),
            ("p99 <= 100 ms", purchases["p99_us"] <= 100_000),
            ("0 errors", purchases["errors"] == 0),
            (">= 0.6 x baseline", statistics.median(ratios) >= 0.6),
            (f"batch of {args.batch_size:,} <= 1 s", batch <= 1.0),
        ]
        print(
            "targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in targets)
        )
    finally:
        if gunicorn is not None and gunicorn.poll() is None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            try:
                gunicorn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(gunicorn.pid, signal.SIGKILL)
        import redis

        # This run's tasks, which no worker consumed.
        redis.Redis.from_url(args.redis).delete(queue, f"_kombu.binding.{queue}")
        connections.close_all()
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep:
            subprocess.run([*admin, f"DROP DATABASE IF EXISTS {args.database}"], check=True)


if __name__ == "__main__":
    main()
