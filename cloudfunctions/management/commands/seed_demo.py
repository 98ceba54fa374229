"""Load demo users (and demo data) for local development; safe to run again."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cloudfunctions.demo import seed_demo


class Command(BaseCommand):
    help = "Create demo users and data for local development (idempotent)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Demo data is for development only (DEBUG is false).")
        logins = seed_demo()
        self.stdout.write(
            self.style.SUCCESS("Demo data ready. Sign in at http://127.0.0.1:8000 as:")
        )
        for username, password, role in logins:
            self.stdout.write(f"  {username} / {password}   ({role})")
