"""Racing services with real threads, each on its own database connection (PostgreSQL)."""

import os
import threading
from collections import Counter

from django.db import connection

from loyalty.errors import ApplicationError

# PostgreSQL's default max_connections is 100; the test process, the worker and the pool
# need some, so at most this many threads hold a connection at once.
MAX_THREADS = 60

# A race that passes once proves little: tests that take the `race_round` fixture run this many
# times (CI's PostgreSQL mode sets RACE_ROUNDS=20; see tests/conftest.py).
RACE_ROUNDS = int(os.environ.get("RACE_ROUNDS", "2"))


def race(count: int, action, threads: int | None = None) -> Counter:
    """Run `action(0..count-1)` from threads released at the same moment; count the outcomes.

    With more actions than MAX_THREADS, each thread runs its share back to back, so that many
    attempts are in flight at every moment until the last one."""
    threads = min(threads or count, count, MAX_THREADS)
    barrier = threading.Barrier(threads)
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def attempt(index: int) -> str:
        try:
            result = action(index)
            return result if isinstance(result, str) else "ok"
        except ApplicationError as exc:
            return exc.code
        except Exception as exc:
            return f"unexpected {type(exc).__name__}: {exc}"

    def run(worker: int) -> None:
        try:
            barrier.wait()
            results = [attempt(index) for index in range(worker, count, threads)]
        finally:
            connection.close()
        with lock:
            outcomes.update(results)

    workers = [threading.Thread(target=run, args=(worker,)) for worker in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return outcomes
