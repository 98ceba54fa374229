"""The engine on real queues: several concurrent worker processes on PostgreSQL, and RQ on Redis."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.test import override_settings
from werkzeug import Request, Response

from orchestration.models import Run
from orchestration.processes import deployments
from orchestration.runs import services as run_services
from tests.factories import (
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
    ProcessFactory,
    StepFactory,
)
from tests.orchestration.run_builders import deployed_process
from tests.workers import worker_env

ROOT = Path(__file__).resolve().parents[3]


def _counting_server(server):
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(request: Request) -> Response:
        with lock:
            counts[f"{request.args['run']}:{request.path}"] += 1
        return Response('{"ok": true}', content_type="application/json")

    server.expect_request("/v1/a").respond_with_handler(handler)
    server.expect_request("/v1/b").respond_with_handler(handler)
    return counts


def _two_step_process(base_url: str):
    connection_ = ApiKeyConnectionFactory(base_url=base_url)
    process = ProcessFactory()
    for position, path in enumerate(("/v1/a", "/v1/b"), start=1):
        CloudFunctionFactory(
            step=StepFactory(process=process, position=position),
            connection=connection_,
            method="POST",
            uri=f'"{path}"',
            query_params=[{"key": '"run"', "value": "string(trigger.n)"}],
            completion_event=EventFactory(process=process, name=f"s{position}.done"),
        )
    deployments.process_deploy(process=process, actor=None)
    process.refresh_from_db()
    return process


@pytest.mark.postgres  # several worker processes on one database
@pytest.mark.django_db(transaction=True)
def test_several_workers_execute_every_step_exactly_once(
    outbound_tls, tls_httpserver, tls_ca_bundle
):
    counts = _counting_server(tls_httpserver)
    process = _two_step_process(tls_httpserver.url_for("/").rstrip("/"))
    runs = [
        run_services.run_start(process=process, trigger=Run.Trigger.COMMAND, input={"n": n})
        for n in range(40)
    ]
    env = worker_env(tls_ca_bundle)
    # Three processes of four concurrent loops each: twelve claimers racing for 40 runs.
    command = [sys.executable, "manage.py", "run_worker", "--batch", "--concurrency", "4"]
    workers = [
        subprocess.Popen(command + ["--worker-id", f"w{i}"], cwd=ROOT, env=env) for i in range(3)
    ]
    for worker in workers:
        assert worker.wait(timeout=180) == 0
    statuses = Counter(
        Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True)
    )
    assert statuses == {Run.Status.SUCCEEDED: 40}
    assert len(counts) == 80 and set(counts.values()) == {1}, counts


@pytest.mark.django_db
def test_the_engine_runs_on_rq_with_redis(
    outbound_tls, tls_httpserver, django_capture_on_commit_callbacks
):
    import django_rq
    import redis
    from django_tasks_rq.backend import Job
    from rq import SimpleWorker

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
    except redis.exceptions.ConnectionError:
        pytest.fail("Redis is not answering on 127.0.0.1:6379 (this machine runs it)")
    counts = _counting_server(tls_httpserver)
    process = _two_step_process(tls_httpserver.url_for("/").rstrip("/"))
    rq_tasks = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    with override_settings(TASKS=rq_tasks):
        queue = django_rq.get_queue("default", job_class=Job)
        queue.empty()
        with django_capture_on_commit_callbacks(execute=True):
            run = run_services.run_start(
                process=process, trigger=Run.Trigger.COMMAND, input={"n": 7}
            )
        assert queue.count == 1
        SimpleWorker([queue], connection=queue.connection, job_class=Job).work(burst=True)
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED
    assert counts == {"7:/v1/a": 1, "7:/v1/b": 1}


@pytest.mark.postgres  # a worker process on the test database
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_is_killed_is_failed_by_the_next_worker(
    outbound_tls, tls_httpserver, tls_ca_bundle
):
    reached, release = threading.Event(), threading.Event()

    def stall(request: Request) -> Response:
        reached.set()
        release.wait(30)
        return Response("{}", content_type="application/json")

    tls_httpserver.expect_request("/v1/slow").respond_with_handler(stall)
    tls_httpserver.expect_request("/v1/fast").respond_with_json({})
    base_url = tls_httpserver.url_for("/").rstrip("/")
    slow, fast = (
        deployed_process(ApiKeyConnectionFactory(base_url=base_url), f'"{path}"', max_attempts=1)
        for path in ("/v1/slow", "/v1/fast")
    )
    env = {**worker_env(tls_ca_bundle), "RUN_STALE_AFTER_SECONDS": "1"}
    # --no-reload: under the autoreloader the worker would be a child that kill() misses.
    command = [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--no-reload"]

    lost = run_services.run_start(process=slow, trigger=Run.Trigger.COMMAND, input={})
    worker = subprocess.Popen(command + ["--worker-id", "doomed"], cwd=ROOT, env=env)
    try:
        assert reached.wait(120), "the worker never sent the slow request"
    finally:
        worker.kill()  # SIGKILL mid-request: no handler, no clean-up, as in a crash
        worker.wait()
        release.set()
    lost.refresh_from_db()
    assert lost.status == Run.Status.RUNNING  # what a dead worker leaves behind

    time.sleep(1.5)  # longer than RUN_STALE_AFTER_SECONDS
    later = run_services.run_start(process=fast, trigger=Run.Trigger.COMMAND, input={})
    subprocess.run(command + ["--batch", "--worker-id", "next"], cwd=ROOT, env=env, timeout=120)
    lost.refresh_from_db()
    later.refresh_from_db()
    assert later.status == Run.Status.SUCCEEDED
    assert lost.status == Run.Status.FAILED and "stopped" in lost.error_message
    assert lost.next_position == 0  # re-run from the failed step starts at the slow one


def test_a_pool_loop_that_fails_starts_again_and_the_others_go_on(monkeypatch):
    """The database restarting makes django-tasks-db's loop raise: the pool must not shrink."""
    from orchestration.runs import worker_pool

    monkeypatch.setattr(worker_pool, "RESTART_PAUSE_SECONDS", 0.01)
    calls = []

    def flaky_run(self):
        calls.append(self.worker_id)
        if calls.count(self.worker_id) == 1:
            raise RuntimeError("connection refused")  # stands in for an OperationalError

    monkeypatch.setattr(worker_pool.Worker, "run", flaky_run)
    pool = worker_pool.WorkerPool(
        concurrency=2,
        worker_id="t",
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        excluded_queue_names=[],
    )

    pool.run()

    # Each loop failed once, started again and ended as a batch loop does.
    assert sorted(calls) == ["t-0", "t-0", "t-1", "t-1"]
