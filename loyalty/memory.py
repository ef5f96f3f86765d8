"""How the Celery worker process holds on to memory (glibc's malloc). Plumbing.

A segmentation run at a million members allocates and frees arrays of 8-64 MB by the
hundred. By default glibc maps the larger ones fresh from the kernel and returns freed memory,
so every run, and every stage of a run, pays for the kernel zeroing new pages again: the
scoring stage took 1.5-1.7 s in a run against 0.85-0.9 s with this policy, and a whole run
6.6 s against 7.7 s (bench/segmentation.py, rounds after the first). The price: the worker
keeps the memory of its largest task (about 1 GB at a million members) instead of shrinking
after it. WORKER_KEEP_FREED_MEMORY=false turns it off.
"""

from __future__ import annotations

import ctypes

# mallopt(3) parameters.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # the most glibc accepts on 64-bit
TRIM_THRESHOLD = 1024 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Serve allocations below 32 MB from the heap and keep up to 1 GB of freed heap in the
    process for the next ones. False where there is no glibc (nothing changes then)."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
