"""The worker's memory policy: freed arrays stay in the process for the next allocations."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Allocates and frees a 16 MB array, then prints the free bytes glibc keeps in its heap.
SCRIPT = """
import ctypes, sys
import numpy as np
from loyalty.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
array = np.ones(2_000_000)
del array
print(libc.mallinfo2().fordblks)
"""


def free_heap_after_a_freed_array(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_worker_keeps_a_freed_array_for_reuse():
    assert free_heap_after_a_freed_array("keep") >= 16_000_000
    assert free_heap_after_a_freed_array("default") < 16_000_000  # returned to the kernel


def test_the_worker_applies_the_policy_unless_turned_off(settings, monkeypatch):
    from loyalty import celery, memory

    applied = []
    monkeypatch.setattr(memory, "keep_freed_memory", lambda: applied.append(True) or True)
    settings.WORKER_KEEP_FREED_MEMORY = False
    celery._memory_policy()
    assert applied == []
    settings.WORKER_KEEP_FREED_MEMORY = True
    celery._memory_policy()
    assert applied == [True]
