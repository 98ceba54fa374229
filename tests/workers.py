"""What a db_worker process started by a test or a benchmark needs to share its database."""

from __future__ import annotations

import os

from django.db import connection


def worker_env(ca_bundle: str) -> dict[str, str]:
    """The environment of a worker process on the current (PostgreSQL) test database, trusting
    the loopback servers' CA."""
    db = connection.settings_dict
    return {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "OUTBOUND_ALLOW_LOOPBACK": "true",
        "OUTBOUND_CA_BUNDLE": ca_bundle,
    }
