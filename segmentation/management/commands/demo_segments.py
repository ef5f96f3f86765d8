"""Example rule-based segments for the demo, then a first recalculation if there is none."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from segmentation.models import RuleSegment
from segmentation.rules import validate_rule
from segmentation.services import rule_segment_save

# Each rule selects what its name says (a test checks the counts against the segments).
EXAMPLES = [
    (
        "Champions with e-mail consent",
        "Champions who may receive e-mail: the audience for early access.",
        {
            "all": [
                {"field": "segment", "op": "in", "value": ["champions"]},
                {"field": "consent", "op": "is", "value": True},
            ]
        },
    ),
    (
        "Win back: valuable and slipping",
        "At risk or can't lose, with a CLV of at least EUR 20.",
        {
            "all": [
                {"field": "segment", "op": "in", "value": ["at_risk", "cant_lose"]},
                {"field": "clv", "op": "gte", "value": 20},
            ]
        },
    ),
    (
        "Big spenders of the last 90 days",
        "Spent at least EUR 250 in the last 90 days.",
        {"all": [{"field": "spend", "op": "gte", "value": 250, "days": 90}]},
    ),
]

# Rules earlier versions of this command created, which selected more than their names say:
# an example still holding one of them is brought in line (an edited rule is left alone).
OUTDATED_RULES = {
    "Champions with e-mail consent": {
        "all": [
            {"field": "segment", "op": "in", "value": ["champions", "loyal"]},
            {"field": "consent", "op": "is", "value": True},
        ]
    },
    "Big spenders of the last 90 days": {
        "any": [
            {"field": "spend", "op": "gte", "value": 250, "days": 90},
            {"field": "quadrant", "op": "in", "value": ["true_friends"]},
        ]
    },
}


class Command(BaseCommand):
    help = "Create example rule-based segments (once) and run the first recalculation."

    def handle(self, *args, **options) -> None:
        if not RuleSegment.objects.exists():
            for name, description, rule in EXAMPLES:
                validate_rule(rule)
                RuleSegment.objects.create(name=name, description=description, rule=rule)
            self.stdout.write(f"{len(EXAMPLES)} example rule-based segments created.")
        else:
            corrected = self._correct_outdated_examples()
            if corrected:
                self.stdout.write(f"{corrected} example rule-based segments corrected.")
        call_command("recalculate_segments", if_none=True, stdout=self.stdout)

    @staticmethod
    def _correct_outdated_examples() -> int:
        corrected = 0
        with transaction.atomic():
            for name, description, rule in EXAMPLES:
                segment = RuleSegment.objects.select_for_update().filter(name=name).first()
                if segment is not None and segment.rule == OUTDATED_RULES.get(name):
                    rule_segment_save(segment=segment, rule=rule)
                    RuleSegment.objects.filter(pk=segment.pk).update(description=description)
                    corrected += 1
        return corrected
