"""Run a process test from the shell and print the captured variables as JSON."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from orchestration.models import Process, StepRun
from orchestration.processes.services import process_test_run
from orchestration.validators import is_ascii_digits


class Command(BaseCommand):
    help = "Test a process (every step, for real, on its test input) and print what was captured."

    def add_arguments(self, parser):
        parser.add_argument("process", help="Process id or exact name.")

    def handle(self, *args, process, **options):
        found = Process.objects.filter(pk=int(process)) if is_ascii_digits(process) else None
        if not found:
            found = Process.objects.filter(name=process)
        if found.count() != 1:
            raise CommandError(f"No single process matches {process!r}.")
        runs = process_test_run(process=found.get(), actor=None)
        output = {
            "steps": [
                {
                    "step": run.step.name,
                    "outcome": run.outcome,
                    "event": run.event.name if run.event else None,
                    "error": run.error_message or None,
                }
                for run in runs
            ],
            "events": {run.event.name: run.captured for run in runs if run.event},
        }
        self.stdout.write(json.dumps(output, indent=2, ensure_ascii=False))
        if runs and runs[-1].outcome == StepRun.Outcome.FAILED:
            raise CommandError(f"Step {runs[-1].step.name!r} failed: {runs[-1].error_message}")
