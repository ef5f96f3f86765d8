"""The statistics of a campaign's uplift: recipients against the holdout (pure, no Django).

- Conversion rate: the difference of two proportions with Newcombe's hybrid score interval
  (method 10 in Newcombe 1998, built from the two Wilson score intervals). Unlike the Wald
  interval it stays inside [-1, 1] and does not collapse to a single point when a group has no
  (or only) conversions, which is common in a small holdout.
- Spend per member: the difference of two means with Welch's interval (unequal variances,
  Welch-Satterthwaite degrees of freedom), from each group's count, sum and sum of squares, so
  the database aggregates and no member row is read in Python.

A `Verdict` says which way the interval points: `NO_EFFECT` when it holds 0 ("no measurable
effect yet"), `TOO_FEW` when a group is too small to say anything.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95


class Verdict(enum.Enum):
    TOO_FEW = "too_few"
    NO_EFFECT = "no_effect"
    MORE = "more"
    LESS = "less"


@dataclass(frozen=True)
class Interval:
    """A difference (recipients minus holdout) with its confidence interval."""

    estimate: float
    low: float
    high: float

    @property
    def holds_zero(self) -> bool:
        return self.low <= 0 <= self.high

    @property
    def verdict(self) -> Verdict:
        if self.holds_zero:
            return Verdict.NO_EFFECT
        return Verdict.MORE if self.estimate > 0 else Verdict.LESS


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval of a proportion."""
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_difference(
    x1: int, n1: int, x0: int, n0: int, confidence: float = CONFIDENCE
) -> Interval | None:
    """p1 - p0 with Newcombe's hybrid score interval; None if a group is empty."""
    if n1 <= 0 or n0 <= 0:
        return None
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, confidence)
    l0, u0 = wilson(x0, n0, confidence)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return Interval(d, low, high)


@dataclass(frozen=True)
class Moments:
    """A group's count, sum and sum of squares (what the database hands over)."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The sample variance (n - 1 in the denominator); never below 0 from rounding."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


def mean_difference(
    treated: Moments, control: Moments, confidence: float = CONFIDENCE
) -> Interval | None:
    """mean1 - mean0 with Welch's interval; None if a group has fewer than 2 members."""
    if treated.n < 2 or control.n < 2:
        return None
    d = treated.mean - control.mean
    a, b = treated.variance / treated.n, control.variance / control.n
    se = math.sqrt(a + b)
    if se == 0:
        return Interval(d, d, d)
    df = (a + b) ** 2 / (a * a / (treated.n - 1) + b * b / (control.n - 1))
    t = float(stats.t.ppf(1 - (1 - confidence) / 2, df))
    return Interval(d, d - t * se, d + t * se)


def verdict(interval: Interval | None) -> Verdict:
    return Verdict.TOO_FEW if interval is None else interval.verdict
