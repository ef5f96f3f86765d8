"""Rule-based segments: a small JSON language, validated, compiled to one ORM query.

A rule is a group or a condition:

    {"all": [<rule>, ...]}                 every part holds (AND)
    {"any": [<rule>, ...]}                 at least one part holds (OR)
    {"field": "<name>", "op": "<op>", "value": <value>, "days": <n>}   one condition

Fields, their operators and values are in FIELDS below; `days` is needed by the fields that
look back over the last N days. Conditions on scores use the run the rule is evaluated
against (by default the current one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import (
    Count,
    F,
    Max,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loyalty.models import Purchase, Tier
from members.models import ConsentChannel, Language, Member, MemberStatus
from members.selectors import consenting_member_ids

from .errors import RuleInvalid
from .models import Quadrant, Segment

MAX_DEPTH = 5
MAX_CONDITIONS = 50


@dataclass(frozen=True)
class FieldSpec:
    label: Any
    kind: str  # choice | number | integer | date | boolean | month
    ops: tuple[str, ...]
    needs_days: bool = False
    choices: Callable[[], list[str]] | None = None


def _tier_names() -> list[str]:
    return list(Tier.objects.values_list("name", flat=True))


NUMBER_OPS = ("gte", "lte", "eq", "between")
SET_OPS = ("in", "not_in")
DATE_OPS = ("before", "after")

FIELDS: dict[str, FieldSpec] = {
    "tier": FieldSpec(gettext_lazy("Tier"), "choice", SET_OPS, choices=_tier_names),
    "segment": FieldSpec(
        gettext_lazy("RFM segment"), "choice", SET_OPS, choices=lambda: list(Segment.values)
    ),
    "quadrant": FieldSpec(
        gettext_lazy("Matrix quadrant"), "choice", SET_OPS, choices=lambda: list(Quadrant.values)
    ),
    "r_score": FieldSpec(gettext_lazy("R score"), "integer", NUMBER_OPS),
    "f_score": FieldSpec(gettext_lazy("F score"), "integer", NUMBER_OPS),
    "m_score": FieldSpec(gettext_lazy("M score"), "integer", NUMBER_OPS),
    "clv": FieldSpec(gettext_lazy("Customer lifetime value (EUR)"), "number", NUMBER_OPS),
    "p_alive": FieldSpec(gettext_lazy("P(alive)"), "number", NUMBER_OPS),
    "spend": FieldSpec(
        gettext_lazy("Spend in the last N days (EUR, net of refunds)"),
        "number",
        NUMBER_OPS,
        needs_days=True,
    ),
    "purchases": FieldSpec(
        gettext_lazy("Purchases in the last N days"), "integer", NUMBER_OPS, needs_days=True
    ),
    "last_purchase": FieldSpec(gettext_lazy("Last purchase"), "date", DATE_OPS),
    "enrolled": FieldSpec(gettext_lazy("Enrolment date"), "date", DATE_OPS),
    "consent": FieldSpec(gettext_lazy("Marketing e-mail consent"), "boolean", ("is",)),
    "language": FieldSpec(
        gettext_lazy("Language"), "choice", SET_OPS, choices=lambda: list(Language.values)
    ),
    "birthday_month": FieldSpec(gettext_lazy("Birthday month"), "month", SET_OPS),
}


def _fail(path: str, message: str) -> RuleInvalid:
    return RuleInvalid(_("%(path)s: %(message)s") % {"path": path, "message": message})


def _number(value: Any, path: str, integer: bool) -> Decimal:
    if isinstance(value, bool):
        raise _fail(path, _("a number is expected"))
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise _fail(path, _("a number is expected")) from exc
    if not number.is_finite() or (integer and number != number.to_integral_value()):
        raise _fail(path, _("a whole number is expected") if integer else _("a number is expected"))
    return number


def _validate_value(spec: FieldSpec, op: str, value: Any, path: str) -> Any:
    if spec.kind in ("choice", "month"):
        if not isinstance(value, list) or not value:
            raise _fail(path, _("choose at least one value"))
        if spec.kind == "month":
            months = [_number(item, path, integer=True) for item in value]
            if any(not 1 <= month <= 12 for month in months):
                raise _fail(path, _("months are 1 to 12"))
            return [int(month) for month in months]
        allowed = spec.choices() if spec.choices else []
        unknown = [item for item in value if item not in allowed]
        if unknown:
            raise _fail(
                path, _("unknown value(s): %(values)s") % {"values": ", ".join(map(str, unknown))}
            )
        return value
    if spec.kind in ("number", "integer"):
        integer = spec.kind == "integer"
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise _fail(path, _("'between' needs two numbers"))
            low, high = (_number(item, path, integer) for item in value)
            if low > high:
                raise _fail(path, _("the first number must not exceed the second"))
            return [low, high]
        return _number(value, path, integer)
    if spec.kind == "date":
        parsed = parse_date(value) if isinstance(value, str) else None
        if parsed is None:
            raise _fail(path, _("a date like 2026-01-31 is expected"))
        return parsed
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(path, _("true or false is expected"))
        return value
    raise _fail(path, _("unsupported field"))


def validate_rule(
    rule: Any, path: str = "rule", depth: int = 0, counter: list[int] | None = None
) -> None:
    """Raise RuleInvalid, naming where, unless `rule` is a well-formed rule."""
    counter = counter if counter is not None else [0]
    if depth > MAX_DEPTH:
        raise _fail(path, _("rules nest at most %(depth)d levels") % {"depth": MAX_DEPTH})
    if not isinstance(rule, dict):
        raise _fail(path, _("a group or a condition is expected"))
    groups = [key for key in ("all", "any") if key in rule]
    if groups:
        if len(groups) != 1 or len(rule) != 1:
            raise _fail(path, _("a group has exactly one key, 'all' or 'any'"))
        parts = rule[groups[0]]
        if not isinstance(parts, list) or not parts:
            raise _fail(path, _("a group needs at least one condition"))
        for index, part in enumerate(parts):
            validate_rule(part, f"{path}.{groups[0]}[{index}]", depth + 1, counter)
        return
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise _fail(path, _("at most %(count)d conditions") % {"count": MAX_CONDITIONS})
    field = rule.get("field")
    if field not in FIELDS:
        raise _fail(path, _("unknown field %(field)r") % {"field": field})
    spec = FIELDS[field]
    if rule.get("op") not in spec.ops:
        raise _fail(path, _("operator must be one of %(ops)s") % {"ops": ", ".join(spec.ops)})
    extra = set(rule) - {"field", "op", "value", "days"}
    if extra:
        raise _fail(path, _("unexpected key(s): %(keys)s") % {"keys": ", ".join(sorted(extra))})
    if spec.needs_days:
        days = rule.get("days")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise _fail(path, _("'days' must be a whole number from 1 to 3650"))
    elif "days" in rule:
        raise _fail(path, _("'days' does not apply to this field"))
    if "value" not in rule:
        raise _fail(path, _("a value is required"))
    _validate_value(spec, rule["op"], rule["value"], path)


# --- compiling -----------------------------------------------------------------------------


class _Compiler:
    def __init__(self, run_id: int | None, now: dt.datetime) -> None:
        self.run_id = run_id
        self.now = now
        self.annotations: dict[str, Any] = {}
        self.uses_scores = False

    def compile(self, rule: dict) -> Q:
        if "all" in rule or "any" in rule:
            parts = [self.compile(part) for part in rule.get("all") or rule.get("any") or []]
            combined = parts[0]
            for part in parts[1:]:
                combined = combined & part if "all" in rule else combined | part
            return combined
        return self.condition(rule)

    def _compare(self, lookup: str, op: str, value: Any) -> Q:
        if op == "between":
            return Q(**{f"{lookup}__gte": value[0], f"{lookup}__lte": value[1]})
        return Q(**{f"{lookup}__{'exact' if op == 'eq' else op}": value})

    def _alias(self, name: str, expression: Any) -> str:
        alias = f"rule_{name}_{len(self.annotations)}"
        self.annotations[alias] = expression
        return alias

    def _days_ago(self, days: int) -> dt.datetime:
        return self.now - dt.timedelta(days=days)

    def condition(self, rule: dict) -> Q:
        field, op = rule["field"], rule["op"]
        spec = FIELDS[field]
        value = _validate_value(spec, op, rule["value"], field)
        if field in ("segment", "quadrant", "r_score", "f_score", "m_score", "clv", "p_alive"):
            self.uses_scores = True
            lookup = f"segment_scores__{field}"
            if op == "not_in":
                # A negated multi-valued lookup would ignore the run; use the complement instead.
                choices = spec.choices() if spec.choices else []
                value = [choice for choice in choices if choice not in value]
            if op in SET_OPS:
                return Q(**{f"{lookup}__in": value})
            return self._compare(lookup, op, value)
        # "Not in" includes members without a value (no tier, no birth date): spelled out,
        # because inside an OR Django leaves a negated outer-joined lookup to SQL's NULL logic.
        if field == "tier":
            q = Q(points_account__tier__name__in=value)
            return (~q | Q(points_account__tier__isnull=True)) if op == "not_in" else q
        if field == "language":
            q = Q(language__in=value)
            return ~q if op == "not_in" else q
        if field == "birthday_month":
            q = Q(birth_date__month__in=value)
            return (~q | Q(birth_date__isnull=True)) if op == "not_in" else q
        if field == "enrolled":
            return (
                Q(enrolled_at__date__lt=value) if op == "before" else Q(enrolled_at__date__gt=value)
            )
        if field == "consent":
            q = Q(pk__in=consenting_member_ids(channel=ConsentChannel.EMAIL))
            return q if value else ~q
        # Purchase conditions are semi-joins on one grouped query over the purchases (a
        # correlated subquery per member is ten times slower at a million members).
        purchases = Purchase.objects.filter(purchased_at__lte=self.now).values("member_id")
        if field == "last_purchase":
            last = purchases.annotate(last=Max("purchased_at"))
            if op == "before":
                latest = last.filter(last__lt=_local_midnight(value))
            else:
                latest = last.filter(last__gte=_local_midnight(value + dt.timedelta(days=1)))
            return Q(pk__in=latest.values("member_id"))
        recent = purchases.filter(purchased_at__gt=self._days_ago(rule["days"]))
        if field == "spend":
            totals = recent.annotate(total=Sum(F("amount") - F("refunded_amount")))
        else:
            totals = recent.annotate(total=Count("pk"))
        holds = self._compare("total", op, value)
        if _holds_for_zero(op, value):
            # Members without purchases (total 0) match too: exclude those who do not.
            return ~Q(pk__in=totals.exclude(holds).values("member_id"))
        return Q(pk__in=totals.filter(holds).values("member_id"))


def _local_midnight(day: dt.date) -> dt.datetime:
    """The start of `day` in the program's time zone (dates in rules are local dates)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _holds_for_zero(op: str, value: Any) -> bool:
    if op == "between":
        return value[0] <= 0 <= value[1]
    return {"gte": value <= 0, "lte": value >= 0, "eq": value == 0}[op]


def rule_members(
    *, rule: dict, run_id: int | None, now: dt.datetime | None = None
) -> QuerySet[Member]:
    """Active members matching the rule, scores taken from run `run_id`."""
    validate_rule(rule)
    compiler = _Compiler(run_id=run_id, now=now or timezone.now())
    condition = compiler.compile(rule)
    members = Member.objects.filter(status=MemberStatus.ACTIVE)
    if compiler.annotations:
        members = members.annotate(**compiler.annotations)
    if compiler.uses_scores:
        if run_id is None:
            return members.none()
        # Same filter() call: the run and the score conditions apply to one score row, and
        # (run, member) is unique, so the join yields each member at most once.
        return members.filter(Q(segment_scores__run_id=run_id) & condition)
    return members.filter(condition)


# --- evaluating in a run -------------------------------------------------------------------
#
# A recalculation evaluates every rule segment on the member table it already holds in memory
# (scores, purchase windows, attributes) instead of one database query per rule: at a million
# members a rule costs milliseconds instead of seconds. The semantics are those of the ORM
# compiler above; a property test checks that both select the same members.

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
    return _local_midnight(day).timestamp()


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
        value = _validate_value(spec, op, rule["value"], field)
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
