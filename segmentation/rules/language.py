"""The rule language: fields and their operators, validation with a message naming where.

A rule is a group or a condition:

    {"all": [<rule>, ...]}                 every part holds (AND)
    {"any": [<rule>, ...]}                 at least one part holds (OR)
    {"field": "<name>", "op": "<op>", "value": <value>, "days": <n>}   one condition

Fields, their operators and values are in FIELDS below; `days` is needed by the fields that
look back over the last N days. Conditions on scores use the run the rule is evaluated
against (by default the current one). Dates in rules are local dates (local_midnight).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loyalty.models import Tier
from members.models import Language

from ..errors import RuleInvalid
from ..models import Quadrant, Segment

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


def validate_value(spec: FieldSpec, op: str, value: Any, path: str) -> Any:
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
    validate_value(spec, rule["op"], rule["value"], path)


def local_midnight(day: dt.date) -> dt.datetime:
    """The start of `day` in the program's time zone (dates in rules are local dates)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
