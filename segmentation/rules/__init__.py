"""Rule-based segments: a small JSON language (language.py), validated, and compiled twice:
to one ORM query (sql.py: the admin's live count, members_in_segments) and to a boolean mask
over a run's member table in memory (evaluate.py). Both select the same members.
"""

from __future__ import annotations

from .evaluate import ATTRIBUTE_FIELDS, SCORE_FIELDS, RuleNeeds, rule_mask, rule_needs
from .language import (
    DATE_OPS,
    FIELDS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    NUMBER_OPS,
    SET_OPS,
    FieldSpec,
    validate_rule,
)
from .sql import rule_members

__all__ = [
    "ATTRIBUTE_FIELDS",
    "DATE_OPS",
    "FIELDS",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "NUMBER_OPS",
    "SCORE_FIELDS",
    "SET_OPS",
    "FieldSpec",
    "RuleNeeds",
    "rule_mask",
    "rule_members",
    "rule_needs",
    "validate_rule",
]
