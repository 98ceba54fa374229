"""Serve the local demo API on loopback over TLS (development only)."""

from __future__ import annotations

import os
import shutil
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cloudfunctions.demo_api.certs import DEMO_API_ADDRESS, ensure_certificates

DEMO_API_REFUSED = "The demo API is for development only (DEBUG is false)."


class Command(BaseCommand):
    help = "Serve the development demo API (httpbin and an OAuth 2.0 token endpoint) over TLS."

    def add_arguments(self, parser):
        parser.add_argument(
            "--certificates-only",
            action="store_true",
            help="Create the development CA and certificates, then stop.",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG or not settings.DEMO_API_HOST:
            raise CommandError(DEMO_API_REFUSED)
        paths = ensure_certificates(settings.DEMO_API_DIR)
        if options["certificates_only"]:
            return
        gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
        if gunicorn is None:
            raise CommandError("gunicorn is not installed: pip install -e '.[dev]'")
        port = settings.DEMO_API_HOST.rpartition(":")[2]
        self.stdout.write(f"Demo API on https://{DEMO_API_ADDRESS}:{port}")
        self.stdout.flush()
        # Replace this process, so that signals reach gunicorn, which stops its worker.
        os.execv(
            gunicorn,
            [
                gunicorn,
                "--chdir",
                str(settings.BASE_DIR),
                "--bind",
                f"{DEMO_API_ADDRESS}:{port}",
                "--certfile",
                str(paths.cert),
                "--keyfile",
                str(paths.key),
                # One process: the token store and the retry demos' memory are in it.
                "--workers",
                "1",
                "--threads",
                "4",
                "--graceful-timeout",
                "2",
                "--log-level",
                "warning",
                "cloudfunctions.demo_api.app:application",
            ],
        )
