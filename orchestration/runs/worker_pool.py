"""Several of django-tasks-db's worker loops in one process, one thread each.

Steps are HTTPS calls that mostly wait on the network, so one process can keep several
runs in flight. No maintained worker fits here: django-tasks-concurrent needs Python 3.12
and Django 6, and RQ's pool forks processes. So this is the smallest pool around the
database backend's own claim (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL): each
thread is an unchanged `Worker` loop with a connection of its own, closed when it ends.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from django.db import connections
from django_tasks_db.management.commands.db_worker import Worker

logger = logging.getLogger(__name__)

SWITCH_INTERVAL_SECONDS = 0.0005
RESTART_PAUSE_SECONDS = 2.0


class WorkerPool:
    """Run `concurrency` worker loops until each returns (batch) or a signal stops them."""

    def __init__(self, *, concurrency: int, worker_id: str, **worker_options):
        self.workers = [
            Worker(worker_id=f"{worker_id}-{n}", **worker_options) for n in range(concurrency)
        ]
        self._stopping = threading.Event()

    def run(self) -> None:
        # The loops mostly wait on sockets; when one wakes, a loop busy with Python should
        # hand over the interpreter soon (CPython's default is every 5 ms), or each of a
        # run's many waits may cost that much again.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        threads = [
            threading.Thread(target=self._loop, args=(worker,), name=worker.worker_id, daemon=True)
            for worker in self.workers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            # join() with a timeout, so the main thread stays free to take a signal.
            while thread.is_alive():
                thread.join(timeout=0.5)

    def stop(self, signum=None, frame=None) -> None:
        """Let every loop finish the run it holds, then end (a second signal exits at once)."""
        if self._stopping.is_set():
            logger.warning("Stopping now: runs in progress will be failed by the sweep.")
            raise SystemExit(1)
        self._stopping.set()
        logger.warning("Stopping after the runs in progress…")
        for worker in self.workers:
            worker.running = False

    def configure_signals(self) -> None:
        for name in ("SIGINT", "SIGTERM", "SIGQUIT"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self.stop)

    def _loop(self, worker: Worker) -> None:
        try:
            while True:
                try:
                    worker.run()
                    return  # the queue is empty in batch mode, or the pool is stopping
                except Exception as exc:
                    # The database restarting, say: django-tasks-db re-raises what is not a
                    # lock. The loop starts again after a pause, so the pool never shrinks
                    # unnoticed; a loop that dies must not take the others with it either.
                    logger.error("Worker loop %s failed: %s", worker.worker_id, type(exc).__name__)
                    connections.close_all()
                    if self._stopping.wait(RESTART_PAUSE_SECONDS):
                        return
                    worker.running = True
        finally:
            connections.close_all()
