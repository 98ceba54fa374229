"""Fail the running runs whose worker stopped reporting (workers also do this every minute)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from orchestration.runs import liveness


class Command(BaseCommand):
    help = (
        "Fail running runs with no sign of life for RUN_STALE_AFTER_SECONDS, so they can be "
        "re-run from the failed step. Workers do the same before their next run, at most once a "
        "minute; schedule this (cron) to cover times when no run is started."
    )

    def handle(self, *args, **options):
        reaped = liveness.runs_reap_stale()
        self.stdout.write(f"{reaped} stale run(s) failed.")
