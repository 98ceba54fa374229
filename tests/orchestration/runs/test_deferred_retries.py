"""A retry is a task of its own, scheduled for when it is due: workers never sleep on a run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from werkzeug import Response

from orchestration.models import Run
from orchestration.runs import engine, liveness, tasks
from orchestration.runs import services as run_services
from tests.orchestration.run_builders import deployed_process, work

pytestmark = pytest.mark.django_db


def _busy_then_ok(server, path="/v1/x", *, failures=1, status=503, headers=None):
    calls = []

    def handler(request):
        calls.append(request.headers.get("Idempotency-Key"))
        if len(calls) <= failures:
            return Response("busy", status=status, headers=headers or {})
        return Response('{"ok": true}', content_type="application/json")

    server.expect_request(path).respond_with_handler(handler)
    return calls


def test_a_failed_attempt_leaves_the_run_retrying_and_the_worker_free(api):
    connection, server = api
    calls = _busy_then_ok(server, headers={"Retry-After": "30"})
    run = run_services.run_start(
        process=deployed_process(connection, '"/v1/x"'), trigger=Run.Trigger.UI, input={}
    )

    outcome = engine.execute(run.pk)

    assert outcome.status == Run.Status.RETRYING and len(calls) == 1
    run.refresh_from_db()
    assert run.status == Run.Status.RETRYING and run.attempt == 2
    assert run.retry_at == outcome.retry_at
    # The API's Retry-After (30 s) is capped by RUN_RETRY_MAX_DELAY_SECONDS (2 s in tests).
    attempt = run.step_runs.get()
    assert (attempt.retry_after_s, attempt.retry_delay_s) == (30.0, 2.0)


def test_the_task_schedules_the_retry_on_the_queue_for_when_it_is_due(
    api, django_capture_on_commit_callbacks
):
    connection, server = api
    _busy_then_ok(server, headers={"Retry-After": "30"})
    with django_capture_on_commit_callbacks(execute=True):
        run = run_services.run_start(
            process=deployed_process(connection, '"/v1/x"'), trigger=Run.Trigger.UI, input={}
        )
    assert DBTaskResult.objects.count() == 1

    tasks.execute_run.call(run.pk)

    run.refresh_from_db()
    retry = DBTaskResult.objects.order_by("-enqueued_at").first()
    assert DBTaskResult.objects.count() == 2
    assert retry.args_kwargs["args"] == [run.pk]
    assert retry.run_after == run.retry_at
    # Not ready before it is due: no worker takes it early.
    assert not DBTaskResult.objects.ready().filter(pk=retry.pk).exists()


def test_every_attempt_carries_the_same_idempotency_key(api):
    connection, server = api
    calls = _busy_then_ok(server, failures=2)
    run = run_services.run_start(
        process=deployed_process(connection, '"/v1/x"', method="POST"),
        trigger=Run.Trigger.UI,
        input={},
    )
    assert work(run.pk) == Run.Status.SUCCEEDED
    assert len(calls) == 3 and len(set(calls)) == 1
    attempts = list(run.step_runs.order_by("attempt").values_list("attempt", "outcome"))
    assert attempts == [(1, "failed"), (2, "failed"), (3, "succeeded")]


def test_a_run_cancelled_while_it_waits_makes_no_further_attempt(api, designer):
    connection, server = api
    calls = _busy_then_ok(server)
    run = run_services.run_start(
        process=deployed_process(connection, '"/v1/x"'), trigger=Run.Trigger.UI, input={}
    )
    assert engine.execute(run.pk).status == Run.Status.RETRYING

    assert run_services.run_cancel(run=run, actor=designer)
    assert engine.execute(run.pk).status == Run.Status.CANCELLED

    assert len(calls) == 1
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED


def test_a_waiting_run_is_not_stale_until_its_retry_is_long_overdue(api, settings):
    settings.RUN_STALE_AFTER_SECONDS = 600
    connection, server = api
    _busy_then_ok(server)
    run = run_services.run_start(
        process=deployed_process(connection, '"/v1/x"'), trigger=Run.Trigger.UI, input={}
    )
    engine.execute(run.pk)
    long_ago = timezone.now() - timedelta(hours=1)
    # Its last sign of life is old, but it holds no worker: it is waiting, not lost.
    Run.objects.filter(pk=run.pk).update(heartbeat_at=long_ago, started_at=long_ago)
    assert liveness.runs_reap_stale() == 0

    # Its retry overdue by the stale limit: its task may be late in a long queue, not lost.
    late = timezone.now() - timedelta(minutes=30)
    Run.objects.filter(pk=run.pk).update(retry_at=late)
    assert liveness.runs_reap_stale() == 0
    # Overdue by many times that: the task that was to take it is lost.
    Run.objects.filter(pk=run.pk).update(retry_at=timezone.now() - timedelta(hours=2))
    assert liveness.runs_reap_stale() == 1
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and run.error_message == liveness.RETRY_LOST


def test_a_retry_the_queue_refuses_fails_the_run_with_why(api, settings):
    connection, server = api
    _busy_then_ok(server)
    run = run_services.run_start(
        process=deployed_process(connection, '"/v1/x"'), trigger=Run.Trigger.UI, input={}
    )
    engine.execute(run.pk)
    # An RQ backend whose Redis does not answer (a closed port on loopback).
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:9/0"}}

    assert tasks.queue(run.pk, run_after=timezone.now()) is False

    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and run.error_message == tasks.QUEUE_UNAVAILABLE
