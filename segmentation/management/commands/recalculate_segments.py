"""Recalculate segments in this process: `manage.py recalculate_segments [--if-none]`.

The run goes range by range, as the workers run it (chunked.py), so this process's memory is
bounded by the range size whatever the member count (the single-process run needed 2.2 GB at
3M members)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from segmentation import chunked
from segmentation.errors import RecalculationRunning
from segmentation.models import RunStage, RunStatus
from segmentation.selectors import current_run


class Command(BaseCommand):
    help = "Recalculate RFM segments, CLV and the matrix now, with a progress bar."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--if-none",
            action="store_true",
            help="Do nothing when a finished run exists (used by `make demo`).",
        )

    def handle(self, *args, **options) -> None:
        if options["if_none"] and current_run() is not None:
            self.stdout.write("Segments exist; not recalculated.")
            return
        with tqdm(total=100, unit="%", desc="Segments") as bar:

            def progress(stage: RunStage, percent: int) -> None:
                bar.set_description(str(RunStage(stage).label))
                bar.update(percent - bar.n)

            try:
                run = chunked.recalculate_chunked(progress=progress)
            except RecalculationRunning as error:
                raise CommandError(str(error.message)) from error
            bar.update(100 - bar.n)
        if run.status != RunStatus.DONE:
            raise CommandError(f"The run failed: {run.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{run.member_count} members scored in {run.duration_seconds:.1f} s (run {run.pk})."
            )
        )
