"""Run engine throughput: runs per second with 1, 2 and 4 db_worker processes on PostgreSQL,
against the bare execution service called in a loop in this process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection
from django.db.models import Max, Min
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from cloudfunctions.step.execution import cloud_function_execute
from orchestration.models import Run
from orchestration.processes import deployments
from orchestration.runs import services as run_services
from tests.benchmarks import bench_engine_concurrency
from tests.benchmarks.bench_execution import _tls_server
from tests.factories import (
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
    ProcessFactory,
    StepFactory,
)
from tests.workers import worker_env

ROOT = Path(__file__).resolve().parents[2]
RUNS_PER_WORKER = 100
TARGET_PER_WORKER = 50.0


def run() -> None:
    if connection.vendor != "postgresql":
        print(
            "engine throughput: skipped (needs PostgreSQL; scripts/bench uses it when it answers "
            "on 127.0.0.1:5432, or set DATABASE_URL)",
            flush=True,
        )
        return
    with (
        _tls_server() as (server, bundle),
        override_settings(OUTBOUND_ALLOW_LOOPBACK=True, OUTBOUND_CA_BUNDLE=bundle),
    ):
        _run(server, bundle)
        bench_engine_concurrency.run(server, bundle)


def _run(server, bundle: str) -> None:
    process = ProcessFactory(name="Engine bench")
    cf = CloudFunctionFactory(
        step=StepFactory(process=process, position=1),
        connection=ApiKeyConnectionFactory(base_url=server.url_for("/api").rstrip("/")),
        method="GET",
        uri='"/v1/charges"',
        body="",
        completion_event=EventFactory(process=process, name="charges.listed"),
    )
    deployments.process_deploy(process=process, actor=None)
    process.refresh_from_db()

    calls = 200
    started = time.perf_counter()
    for _ in range(calls):
        assert cloud_function_execute(cloud_function=cf, context={"trigger": {}}).ok
    bare_rate = calls / (time.perf_counter() - started)
    print(f"engine baseline: bare execution service in a loop, {bare_rate:.1f} steps/s", flush=True)

    # A worker that finds the queue empty costs what every worker pays to start.
    Run.objects.all().delete()
    DBTaskResult.objects.all().delete()
    startup_cpu, _ = _workers(1, bundle)
    cores = os.cpu_count() or 1
    single = None
    for workers in (1, 2, 4):
        rate, with_startup, cpu = _drain(process, workers, bundle, startup_cpu)
        single = single or rate
        per_worker = rate / workers
        if workers <= cores:
            verdict = "ok" if per_worker >= TARGET_PER_WORKER else "BELOW TARGET"
            target = f"target >= {TARGET_PER_WORKER:.0f} per worker up to {cores} cores: {verdict}"
        else:
            target = f"more workers than the {cores} cores: no per-worker target"
        print(
            f"engine with {workers} worker(s): {rate:.1f} steps/s steady ({per_worker:.1f} per "
            f"worker; {target}), {with_startup:.1f} steps/s counting each worker's first run, "
            f"ratio to bare loop {rate / bare_rate:.2f}x, scaling vs 1 worker {rate / single:.2f}x; "
            f"{cpu}",
            flush=True,
        )


def _drain(process, workers: int, bundle: str, startup_cpu: float) -> tuple[float, float, str]:
    """Queue runs, let `workers` processes drain them; return steps per second, steady and
    counting start-up, and where the CPU went."""
    Run.objects.all().delete()
    DBTaskResult.objects.all().delete()
    total = RUNS_PER_WORKER * workers
    for n in range(total):
        run_services.run_start(process=process, trigger=Run.Trigger.COMMAND, input={"n": n})
    workers_cpu, busy = _workers(workers, bundle)
    done = Run.objects.filter(status=Run.Status.SUCCEEDED)
    assert done.count() == total, Run.objects.values_list("status", "error_message")[:5]
    # Worker start-up (importing Django) is not engine time: count from the first claim.
    span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
    with_startup = total / (span["last"] - span["first"]).total_seconds()
    # Steady state: from the moment every worker has finished its first run, which also pays
    # for one-off work (building the CEL parser, loading the version, the CA bundle).
    finished = DBTaskResult.objects.values_list("worker_ids", "finished_at")
    first_by_worker: dict[str, object] = {}
    for worker_ids, at in finished:
        first_by_worker[worker_ids[-1]] = min(first_by_worker.get(worker_ids[-1], at), at)
    warm = max(first_by_worker.values())
    steady = sum(1 for _, at in finished if at > warm)
    # The workers share the two cores with PostgreSQL and the loopback server: a busy machine
    # is why more workers stop adding throughput, not a lock in the engine.
    per_run = (workers_cpu - workers * startup_cpu) * 1000 / total
    cpu = f"worker CPU {per_run:.1f} ms per run"
    if busy is not None:
        cpu += f", machine CPU {busy:.0%} busy"
    return steady / (span["last"] - warm).total_seconds(), with_startup, cpu


def _workers(count: int, bundle: str) -> tuple[float, float | None]:
    """Run `count` db_worker processes until the queue is empty; return the CPU seconds they
    used and how busy the whole machine was meanwhile (None where that cannot be read)."""
    env = {**worker_env(bundle), "LOG_LEVEL": "WARNING"}
    # Verbosity 0: the worker's two log lines per task would go to this terminal.
    command = [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "-v0"]
    machine_before, children_before = _machine_cpu(), _children_cpu()
    procs = [
        subprocess.Popen(
            command + ["--worker-id", f"bench{i}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        for i in range(count)
    ]
    for proc in procs:
        proc.wait(timeout=600)
    return _children_cpu() - children_before, _busy_share(machine_before, _machine_cpu())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_cpu() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot, from Linux's /proc/stat."""
    try:
        fields = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def _busy_share(before, after) -> float | None:
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])
