"""Example rule-based segments for the demo, then a first recalculation if there is none."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand

from segmentation.models import RuleSegment
from segmentation.rules import validate_rule

EXAMPLES = [
    (
        "Champions with e-mail consent",
        "Best customers who may receive e-mail: the audience for early access.",
        {
            "all": [
                {"field": "segment", "op": "in", "value": ["champions", "loyal"]},
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
        "Spent at least EUR 250 in the last 90 days, or are true friends.",
        {
            "any": [
                {"field": "spend", "op": "gte", "value": 250, "days": 90},
                {"field": "quadrant", "op": "in", "value": ["true_friends"]},
            ]
        },
    ),
]


class Command(BaseCommand):
    help = "Create example rule-based segments (once) and run the first recalculation."

    def handle(self, *args, **options) -> None:
        if not RuleSegment.objects.exists():
            for name, description, rule in EXAMPLES:
                validate_rule(rule)
                RuleSegment.objects.create(name=name, description=description, rule=rule)
            self.stdout.write(f"{len(EXAMPLES)} example rule-based segments created.")
        call_command("recalculate_segments", if_none=True, stdout=self.stdout)
