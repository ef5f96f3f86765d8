"""Rules evaluated in a run, on the member table it already holds in memory.

A recalculation evaluates every rule segment on that table (scores, purchase windows,
attributes) instead of one database query per rule: at a million members a rule costs
milliseconds instead of seconds. The semantics are those of the ORM compiler (sql.py); a
property test checks that both select the same members.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .language import FIELDS, local_midnight, validate_rule, validate_value

SCORE_FIELDS = ("segment", "quadrant", "r_score", "f_score", "m_score", "clv", "p_alive")
ATTRIBUTE_FIELDS = ("tier", "language", "birthday_month", "enrolled")


@dataclass(frozen=True)
class RuleNeeds:
    attributes: bool  # language, birth month, enrolment date, tier
    consent: bool
    days: frozenset[int]  # windows of the spend / purchases conditions


def rule_needs(rules: list[dict]) -> RuleNeeds:
    """What the member table must hold to evaluate `rules`."""
    conditions: list[dict] = []

    def collect(rule: dict) -> None:
        if "all" in rule or "any" in rule:
            for part in rule.get("all") or rule.get("any") or []:
                collect(part)
        else:
            conditions.append(rule)

    for rule in rules:
        collect(rule)
    return RuleNeeds(
        attributes=any(c["field"] in ATTRIBUTE_FIELDS for c in conditions),
        consent=any(c["field"] == "consent" for c in conditions),
        days=frozenset(c["days"] for c in conditions if FIELDS[c["field"]].needs_days),
    )


def _local_midnight_epoch(day: dt.date) -> float:
    return local_midnight(day).timestamp()


class _Mask:
    """Compiles a rule to a boolean array over the rows of a member table (see rule_mask)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def compile(self, rule: dict) -> np.ndarray:
        if "all" in rule or "any" in rule:
            parts = [self.compile(part) for part in rule.get("all") or rule.get("any") or []]
            return np.logical_and.reduce(parts) if "all" in rule else np.logical_or.reduce(parts)
        return self.condition(rule)

    @staticmethod
    def _compare(values: np.ndarray, op: str, value: Any) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            if op == "between":
                return (values >= float(value[0])) & (values <= float(value[1]))
            if op == "gte":
                return values >= float(value)
            if op == "lte":
                return values <= float(value)
            return values == float(value)

    def _isin(self, column: str, values: list) -> np.ndarray:
        return self.frame[column].isin(values).to_numpy()

    def condition(self, rule: dict) -> np.ndarray:
        field, op = rule["field"], rule["op"]
        spec = FIELDS[field]
        value = validate_value(spec, op, rule["value"], field)
        frame = self.frame
        if field in ("segment", "quadrant"):
            matched = self._isin(field, value)
            return ~matched if op == "not_in" else matched
        if field in SCORE_FIELDS:
            return self._compare(frame[field].to_numpy(dtype="float64"), op, value)
        if field in ("tier", "language", "birthday_month"):
            column = {"birthday_month": "birth_month"}.get(field, field)
            matched = self._isin(column, value)
            return ~matched if op == "not_in" else matched
        if field == "enrolled":
            day = pd.Timestamp(value)
            enrolled = frame["enrolled_date"]
            return ((enrolled < day) if op == "before" else (enrolled > day)).to_numpy()
        if field == "consent":
            consent = frame["consent"].to_numpy(dtype=bool)
            return consent if value else ~consent
        if field == "last_purchase":
            last = frame["last_epoch"].to_numpy(dtype="float64")
            with np.errstate(invalid="ignore"):
                if op == "before":
                    return last < _local_midnight_epoch(value)
                return last >= _local_midnight_epoch(value + dt.timedelta(days=1))
        column = f"{'spend' if field == 'spend' else 'purchases'}_{rule['days']}"
        return self._compare(frame[column].to_numpy(dtype="float64"), op, value)


def rule_mask(rule: dict, frame: pd.DataFrame) -> np.ndarray:
    """Which rows of `frame` (one per active member scored in a run) the rule selects.

    `frame` holds the run's scores (SCORE_FIELDS), last_epoch (seconds, NaN without purchases),
    spend_<days> and purchases_<days> (0 without purchases) for every window in the rules,
    and, when the rules ask for them, language, birth_month, enrolled_date (local, midnight),
    tier (name or None) and consent (bool)."""
    validate_rule(rule)
    return _Mask(frame).compile(rule)
