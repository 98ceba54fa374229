"""Runs in flight per worker process: a slow upstream, and fairness beside a failing API.

Real APIs answer in hundreds of milliseconds, so a worker that executes one run at a time
does at most five 200 ms steps a second. `run_worker` keeps RUN_WORKER_CONCURRENCY runs in
flight, and a retry waits as a scheduled task rather than in a worker, so a process whose
API keeps answering 429 does not slow the others.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from django.db.models import Max, Min
from django_tasks_db.models import DBTaskResult
from werkzeug import Request, Response

from orchestration.models import Run
from orchestration.runs import services as run_services
from tests.factories import (
    ApiKeyConnectionFactory,
)
from tests.orchestration.run_builders import deployed_process
from tests.workers import worker_env

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_SECONDS = 0.2
RUNS_PER_PROCESS = 120
CONCURRENCY = 8
TARGET_SLOW = 30.0
TARGET_SCALING = 1.8
TARGET_FAIRNESS = 0.9


def run(server, bundle: str) -> None:
    def slow(request: Request) -> Response:
        time.sleep(UPSTREAM_SECONDS)
        return Response('{"ok": true}', content_type="application/json")

    def limited(request: Request) -> Response:
        return Response("slow down", status=429, headers={"Retry-After": "5"})

    server.expect_request("/api/v1/slow").respond_with_handler(slow)
    server.expect_request("/api/v1/limited").respond_with_handler(limited)
    base_url = server.url_for("/api").rstrip("/")
    healthy = deployed_process(ApiKeyConnectionFactory(base_url=base_url), '"/v1/slow"')
    failing = deployed_process(ApiKeyConnectionFactory(base_url=base_url), '"/v1/limited"')

    one = _drain({healthy: RUNS_PER_PROCESS}, processes=1, bundle=bundle)[healthy]
    print(
        f"engine, slow upstream ({UPSTREAM_SECONDS * 1000:.0f} ms), 1 worker process of "
        f"{CONCURRENCY}: {one:.1f} steps/s (one run at a time: {1 / UPSTREAM_SECONDS:.0f}; "
        f"target >= {TARGET_SLOW:.0f}: {'ok' if one >= TARGET_SLOW else 'BELOW TARGET'})",
        flush=True,
    )
    two = _drain({healthy: 2 * RUNS_PER_PROCESS}, processes=2, bundle=bundle)[healthy]
    scaling = two / one
    print(
        f"engine, slow upstream ({UPSTREAM_SECONDS * 1000:.0f} ms), 2 worker processes of "
        f"{CONCURRENCY}: {two:.1f} steps/s, {scaling:.2f}x one process (target >= "
        f"{TARGET_SCALING}x: {'ok' if scaling >= TARGET_SCALING else 'BELOW TARGET'})",
        flush=True,
    )
    beside = _drain({healthy: RUNS_PER_PROCESS, failing: RUNS_PER_PROCESS}, 1, bundle)[healthy]
    ratio = beside / one
    print(
        f"engine fairness: healthy runs {one:.1f} steps/s alone, {beside:.1f} steps/s beside a "
        f"failing API (429, Retry-After: 5) (ratio {ratio:.2f}; target >= {TARGET_FAIRNESS}: "
        f"{'ok' if ratio >= TARGET_FAIRNESS else 'BELOW TARGET'})",
        flush=True,
    )


def _drain(runs: dict, processes: int, bundle: str) -> dict:
    """Queue runs of each process, interleaved; let worker processes drain what is due;
    return each process's steps per second from its first claim to its last finish."""
    Run.objects.all().delete()
    DBTaskResult.objects.all().delete()
    for n in range(max(runs.values())):
        for process, count in runs.items():
            if n < count:
                run_services.run_start(process=process, trigger=Run.Trigger.COMMAND, input={})
    env = {**worker_env(bundle), "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "manage.py", "run_worker", "--batch", "--interval", "0"]
    workers = [
        subprocess.Popen(
            [*command, "--concurrency", str(CONCURRENCY), "--worker-id", f"slow{i}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.wait(timeout=600)
    rates = {}
    for process, count in runs.items():
        done = Run.objects.filter(process=process, status=Run.Status.SUCCEEDED)
        span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
        if done.count() == count:
            rates[process] = count / (span["last"] - span["first"]).total_seconds()
    return rates
