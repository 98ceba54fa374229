"""Run the benchmarks against a throw-away test database: `scripts/bench [pages|execution|engine|cel]`."""

from __future__ import annotations

import os
import sys

NAMES = ("pages", "execution", "engine", "cel", "redaction")


def main(argv: list[str]) -> int:
    unknown = sorted(set(argv) - set(NAMES))
    if unknown:
        print(f"Unknown benchmark {', '.join(unknown)}: choose from {', '.join(NAMES)}.")
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestration.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    from tests.benchmarks import (
        bench_cel,
        bench_engine,
        bench_execution,
        bench_pages,
        bench_redaction,
    )

    modules = {
        "pages": bench_pages,
        "execution": bench_execution,
        "engine": bench_engine,
        "cel": bench_cel,
        "redaction": bench_redaction,
    }
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        for name in argv or NAMES:
            modules[name].run()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
