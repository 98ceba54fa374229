"""Fail the running runs whose worker stopped reporting (workers also do this every minute)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from orchestration import engine


class Command(BaseCommand):
    help = (
        "Fail running runs with no sign of life for RUN_STALE_AFTER_SECONDS, so they can be "
        "re-run from the failed step. Workers do the same at most once a minute; this is for "
        "when none is running."
    )

    def handle(self, *args, **options):
        reaped = engine.runs_reap_stale()
        self.stdout.write(f"{reaped} stale run(s) failed.")
