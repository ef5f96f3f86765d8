"""Values kept on disk as sorted runs: exact order statistics of a whole population with the
memory of one part. Pure numpy, no Django.

The facts step of a chunked run (pipeline.global_facts) sees the members part by part and needs
exact ranks over all of them (the quantile cuts, the matrix medians). Holding every value would
grow with the member count; here the values are gathered up to RUN_VALUES, sorted and written
to a file (a run), and questions about the whole are answered by binary searches over the runs:
the value at a rank (rank_value), how many values lie below or at a value. A run keeps in
memory only the first value of each block of BLOCK values (1/4096 of it); a search reads the
one block it needs from the file. Not memory-mapped: mapped pages count in the process's
resident memory, and the kernel maps the pages around each one touched (measured: the mapped
runs added 8 bytes a value to the facts step's peak). Disk: 8 bytes a value, in the directory
the caller gives (a TemporaryDirectory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

_SIGN = 1 << 63


def _key(value: float) -> int:
    """An integer that orders like the float (-0.0 and 0.0 share one): for the bisection."""
    bits = int(np.array([value], dtype="float64").view("int64")[0])
    return bits if bits >= 0 else -(bits & (_SIGN - 1))


def _value(key: int) -> float:
    bits = key if key >= 0 else (-key) | _SIGN
    return float(np.array([bits], dtype="uint64").view("float64")[0])


# Values gathered in memory before they are sorted and written as one run (8 MB): many small
# parts make few runs, which keeps the searches over them cheap.
RUN_VALUES = 1 << 20

# Values per block of a run: what one search reads from the file (32 KB).
BLOCK = 4096


class _Run:
    """Sorted values in a file, with the first value of every block in memory."""

    def __init__(self, path: Path, values: np.ndarray) -> None:
        values.tofile(path)
        self.path, self.length, self.block = path, len(values), BLOCK
        self.firsts = values[:: self.block].copy()

    def _read(self, start: int, count: int) -> np.ndarray:
        return np.fromfile(self.path, dtype="float64", count=count, offset=start * 8)

    def __getitem__(self, position: int) -> float:
        return float(self._read(position, 1)[0])

    def position(self, value: float, side: Literal["left", "right"]) -> int:
        """np.searchsorted(values, value, side) over the whole run: the blocks before the
        last whose first value is below (at most) `value` all count, the later ones not."""
        block = int(np.searchsorted(self.firsts, value, side=side)) - 1
        if block < 0:
            return 0
        start = block * self.block
        values = self._read(start, min(self.block, self.length - start))
        return start + int(np.searchsorted(values, value, side=side))


class SortedRuns:
    """Float values added part by part (no NaN), answered about as one population."""

    def __init__(self, directory: Path | str, name: str, run_values: int | None = None) -> None:
        self._directory = Path(directory)
        self._name = name
        self._run_values = run_values or RUN_VALUES
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self._runs: list[_Run] = []
        self.count = 0

    def add(self, values) -> None:
        numbers = np.array(values, dtype="float64")  # a copy: no view keeps a part alive
        if np.isnan(numbers).any():
            raise ValueError("NaN has no rank: map or drop it first")
        self._pending.append(numbers)
        self._pending_count += len(numbers)
        self.count += len(numbers)
        if self._pending_count >= self._run_values:
            self._write_run()

    def _write_run(self) -> None:
        if self._pending_count:
            path = self._directory / f"{self._name}-{len(self._runs)}.f8"
            self._runs.append(_Run(path, np.sort(np.concatenate(self._pending))))
        self._pending, self._pending_count = [], 0

    def runs(self) -> list[_Run]:
        """The runs, every value written."""
        if self._pending_count:
            self._write_run()
        return self._runs

    def below(self, value: float) -> int:
        """How many values are less than `value`."""
        return sum(run.position(value, "left") for run in self.runs())

    def at_most(self, value: float) -> int:
        """How many values are less than or equal to `value`."""
        return sum(run.position(value, "right") for run in self.runs())

    def equal(self, value: float) -> int:
        """How many values are equal to `value`."""
        return self.at_most(value) - self.below(value)

    def next_above(self, value: float) -> float | None:
        """The smallest value greater than `value`, None if there is none."""
        found = [
            run[index]
            for run in self.runs()
            if (index := run.position(value, "right")) < run.length
        ]
        return min(found) if found else None

    def next_below(self, value: float) -> float | None:
        """The largest value less than `value`, None if there is none."""
        found = [
            run[index - 1] for run in self.runs() if (index := run.position(value, "left")) > 0
        ]
        return max(found) if found else None

    def rank_value(self, rank: int) -> float:
        """The value at 0-based `rank` in ascending order (as sorted(all values)[rank]), by
        bisection over the float's bits: at most 64 rounds of one binary search per run."""
        if not 0 <= rank < self.count:
            raise IndexError(f"rank {rank} of {self.count} values")
        runs = self.runs()
        low = _key(min(float(run.firsts[0]) for run in runs))
        high = _key(max(run[run.length - 1] for run in runs))
        while low < high:  # the smallest key whose value has more than `rank` values at most it
            middle = (low + high) // 2
            if self.at_most(_value(middle)) > rank:
                high = middle
            else:
                low = middle + 1
        # The value as stored (0.0 or -0.0, which share a key): the first at least this one.
        value = _value(low)
        return min(
            run[index] for run in runs if (index := run.position(value, "left")) < run.length
        )
