"""Workers' signs of life, and failing the runs whose worker died.

While a worker executes a run, a thread of its own reports on it every
RUN_HEARTBEAT_SECONDS, so a step that waits long (a token endpoint's lock, a slow API) never
looks dead. A run silent for RUN_STALE_AFTER_SECONDS has lost its worker (killed, machine
gone) and is failed; heartbeats use the database's clock, so the workers' clocks never
matter. A run waiting for a retry holds no worker; only when its retry is overdue by
RETRY_LOST_FACTOR times that (its task lost, not merely late in a long queue) is it failed.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from orchestration.models import Run

logger = logging.getLogger(__name__)

# retry_at is set with the workers' clock (the task queue's run_after is read with it).
RETRY_LOST_FACTOR = 6
RETRY_LOST = (
    "The task that was to make this run's next attempt never ran (the queue lost it). "
    "Re-run from the failed step."
)
WORKER_LOST = (
    "The worker running this run stopped: no sign of life for over {silence}. The step in "
    "progress may have reached its API; re-run from the failed step once you know it is safe."
)


def report(*run_ids: int) -> int:
    """Record a sign of life for running runs; return how many are still running."""
    running = Run.objects.filter(pk__in=run_ids, status=Run.Status.RUNNING)
    return running.update(heartbeat_at=Now())


def runs_reap_stale() -> int:
    """Fail the running runs whose worker stopped reporting; return how many.

    Failed rather than queued again: the step in progress may have reached its API, and
    only a person can tell whether running it twice is safe (Re-run from the failed step).
    One statement: a worker's report racing it either lands first and spares its run, or
    lands after and finds the run no longer running.
    """
    seconds = settings.RUN_STALE_AFTER_SECONDS
    cutoff = Now() - timedelta(seconds=seconds)
    # Runs claimed by a worker older than heartbeats have none: their start is the last sign.
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    silence = f"{round(seconds / 60)} minutes" if seconds >= 120 else f"{seconds:g} seconds"
    reaped = Run.objects.filter(silent, status=Run.Status.RUNNING).update(
        status=Run.Status.FAILED,
        finished_at=Now(),
        error_message=WORKER_LOST.format(silence=silence),
    )
    lost_before = timezone.now() - timedelta(seconds=seconds * RETRY_LOST_FACTOR)
    reaped += Run.objects.filter(status=Run.Status.RETRYING, retry_at__lt=lost_before).update(
        status=Run.Status.FAILED, finished_at=Now(), error_message=RETRY_LOST
    )
    if reaped:
        logger.warning("Failed %s run(s) whose worker stopped reporting", reaped)
    return reaped


_last_reap: float | None = None


def reap_if_due() -> None:
    """Sweep for dead runs at most once per RUN_REAP_INTERVAL_SECONDS in this process.

    Every worker sweeps before its next run: no scheduler to deploy, one query a minute
    (before every job under RQ, whose forked job processes start afresh). A sweep that
    fails must not cost the run it precedes.
    """
    global _last_reap
    now = time.monotonic()
    if _last_reap is not None and now - _last_reap < settings.RUN_REAP_INTERVAL_SECONDS:
        return
    _last_reap = now
    try:
        runs_reap_stale()
    except Exception as exc:
        logger.error("Looking for runs whose worker stopped failed: %s", type(exc).__name__)


class _Heartbeat:
    """One thread per worker process reporting on the runs it is executing."""

    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[int, int] = {}  # run id -> how many holders (a run is held once)
        self._thread: threading.Thread | None = None

    @contextmanager
    def beating(self, run_id: int):
        with self._lock:
            # Started lazily, and again in a forked worker, where threads do not survive.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="run-heartbeat", daemon=True
                )
                self._thread.start()
            self._runs[run_id] = self._runs.get(run_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._runs[run_id] -= 1
                if not self._runs[run_id]:
                    del self._runs[run_id]

    def _loop(self) -> None:
        while True:
            # Nothing may end this thread: the runs it reports on would look dead.
            try:
                time.sleep(settings.RUN_HEARTBEAT_SECONDS)
                with self._lock:
                    run_ids = list(self._runs)
                if run_ids:
                    self._beat(run_ids)
            except Exception as exc:
                logger.error("Reporting a sign of life failed: %s", type(exc).__name__)
                time.sleep(1)

    def _beat(self, run_ids: list[int]) -> None:
        try:
            report(*run_ids)
        finally:
            # Beats are rare: holding a connection open between them would only pin it.
            connections.close_all()


_heartbeat = _Heartbeat()
beating = _heartbeat.beating
