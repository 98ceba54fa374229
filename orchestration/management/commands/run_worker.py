"""Run deployed processes' runs, several at once in one process (database task backend)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.crypto import get_random_string
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME

from orchestration.runs.worker_pool import WorkerPool


class Command(BaseCommand):
    help = "Run queued runs with N concurrent worker loops (default RUN_WORKER_CONCURRENCY)."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=settings.RUN_WORKER_CONCURRENCY)
        parser.add_argument("--batch", action="store_true", help="Exit once the queue is empty.")
        parser.add_argument("--interval", type=float, default=1.0)
        parser.add_argument("--queue-name", default=DEFAULT_TASK_QUEUE_NAME)
        parser.add_argument("--worker-id", default=get_random_string(24))

    def handle(self, *, concurrency, batch, interval, queue_name, worker_id, **options):
        if not 1 <= concurrency <= 64:
            raise CommandError("--concurrency must be between 1 and 64.")
        if interval < 0:
            raise CommandError("--interval must be zero or more.")
        pool = WorkerPool(
            concurrency=concurrency,
            worker_id=worker_id,
            queue_names=queue_name.split(","),
            interval=interval,
            batch=batch,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            startup_delay=False,
            max_tasks=None,
            excluded_queue_names=[],
        )
        pool.configure_signals()
        pool.run()
