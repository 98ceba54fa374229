"""Load demo users (and demo data) for local development; safe to run again."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cloudfunctions.demo import app_url, demo_webhook_example, seed_demo

SEED_REFUSED = "Demo data is for development only (DEBUG is false)."


class Command(BaseCommand):
    help = "Create demo users and data for local development (idempotent)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(SEED_REFUSED)
        logins = seed_demo()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Sign in at {app_url()} as:"))
        for username, password, role in logins:
            self.stdout.write(f"  {username} / {password}   ({role})")
        self.stdout.write("Start a run of the deployed demo process from outside:")
        self.stdout.write(f"  {demo_webhook_example()}")
