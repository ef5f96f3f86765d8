"""Carry on segmentation runs left running: `manage.py resume_segments [--run ID] [--here]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from segmentation import chunked
from segmentation.models import RunStatus, SegmentationRun
from segmentation.tasks import recalculate_range


class Command(BaseCommand):
    help = (
        "Hand the ranges not done of a run left running (a range failed, a worker or the "
        "broker was lost) to the workers again, or run them here with --here."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--run", type=int, help="the run (default: the run in progress)")
        parser.add_argument(
            "--here", action="store_true", help="run the ranges in this process, in sequence"
        )

    def handle(self, *args, **options) -> None:
        runs = SegmentationRun.objects.filter(status=RunStatus.RUNNING)
        if options["run"]:
            runs = runs.filter(pk=options["run"])
        run = runs.first()
        if run is None:
            raise CommandError("No run in progress to resume.")
        dispatch = None if options["here"] else _dispatch
        numbers = chunked.run_resume(run, dispatch=dispatch)
        run.refresh_from_db()
        self.stdout.write(
            f"Run {run.pk}: ranges {numbers or 'none'} "
            f"{'run here' if dispatch is None else 'handed to the workers'}; "
            f"status {run.status}."
        )


def _dispatch(run_id: int, number: int) -> None:
    recalculate_range.delay(run_id, number)
