"""Deployments, triggers and the run engine, against real TLS servers on loopback."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone
from werkzeug import Request, Response

from cloudfunctions.models import CloudFunction
from cloudfunctions.step.execution import idempotency_token
from orchestration.models import Process, Run, StepRun
from orchestration.processes import deployments
from orchestration.runs import engine
from orchestration.runs import services as run_services
from tests.factories import (
    ProcessFactory,
    StepFactory,
)
from tests.orchestration.run_builders import deployed_process, draft_process, run_to_end, work

pytestmark = pytest.mark.django_db


def test_deploy_freezes_a_version_the_draft_cannot_change(api, designer_client):
    connection, _ = api
    process = deployed_process(connection, '"/v1/a"')
    version = process.live_version
    assert version.version_number == 1 and version.is_frozen
    draft_cf = CloudFunction.objects.get(step__process=process)
    draft_cf.uri = '"/v1/changed"'
    draft_cf.save()
    assert CloudFunction.objects.get(step__process=version).uri == '"/v1/a"'
    step = version.steps.get()
    url = reverse("step-editor", args=[version.pk, step.pk])
    assert designer_client.post(url, {"revision": 0}).status_code == 403
    assert (
        designer_client.post(reverse("step-create", args=[version.pk]), {"name": "x"}).status_code
        == 403
    )
    second = deployments.process_deploy(process=process, actor=None)
    assert second.version_number == 2
    deployments.process_rollback(process=process, version=version)
    process.refresh_from_db()
    assert process.live_version == version


def test_deploy_refuses_incomplete_steps_listing_them(api, designer_client):
    process = ProcessFactory()
    StepFactory(process=process, name="Unconfigured")
    response = designer_client.post(reverse("process-deploy", args=[process.pk]), follow=True)
    html = response.content.decode()
    assert "Deploy refused" in html and "Unconfigured" in html
    assert not process.versions.exists()


def test_a_run_executes_steps_in_order_on_each_others_events(api):
    connection, server = api
    server.expect_request("/v1/customers/c1").respond_with_json({"charge": "ch_1"})
    server.expect_request("/v1/charges/ch_1").respond_with_json({"amount": 5})
    process = deployed_process(
        connection,
        '"/v1/customers/" + trigger.customer',
        '"/v1/charges/" + events["step1.done"].body.charge',
    )
    run = run_to_end(process, {"customer": "c1"})
    assert run.status == Run.Status.SUCCEEDED
    assert run.events["step2.done"]["body"] == {"amount": 5}
    assert run.step_runs.count() == 2


def test_retries_then_succeeds_with_one_idempotency_key(api):
    connection, server = api
    calls = []

    def flaky(request: Request) -> Response:
        calls.append(request.headers.get("Idempotency-Key"))
        if len(calls) < 3:
            return Response("busy", status=503)
        return Response(json.dumps({"ok": True}), content_type="application/json")

    server.expect_request("/v1/charges", method="POST").respond_with_handler(flaky)
    run = run_to_end(deployed_process(connection, '"/v1/charges"', method="POST"))
    assert run.status == Run.Status.SUCCEEDED
    attempts = list(run.step_runs.order_by("attempt").values_list("attempt", "outcome"))
    assert attempts == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert len(set(calls)) == 1 and calls[0] == idempotency_token(
        f"run-{run.key}-step-{run.version.steps.get().key}"
    )


def test_429_honours_retry_after(api):
    connection, server = api
    calls = []

    def limited(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        return Response("{}", content_type="application/json")

    server.expect_request("/v1/x").respond_with_handler(limited)
    process = deployed_process(connection, '"/v1/x"')
    run = run_services.run_start(process=process, trigger=Run.Trigger.UI, input={})

    before = timezone.now()
    waiting = engine.execute(run.pk)

    # The worker is free at once; the retry is due when the API said, not before.
    assert waiting.status == Run.Status.RETRYING and len(calls) == 1
    assert timedelta(seconds=0.99) <= waiting.retry_at - before <= timedelta(seconds=1.5)
    run.refresh_from_db()
    assert (run.status, run.attempt, run.retry_at) == (Run.Status.RETRYING, 2, waiting.retry_at)
    first = run.step_runs.get()
    assert (first.attempt, first.retry_after_s, first.retry_delay_s) == (1, 1.0, 1.0)
    assert work(run.pk) == Run.Status.SUCCEEDED and len(calls) == 2


def test_a_400_is_not_retried(api):
    connection, server = api
    server.expect_request("/v1/x").respond_with_json({"error": "bad"}, status=400)
    run = run_to_end(deployed_process(connection, '"/v1/x"'))
    assert run.status == Run.Status.FAILED
    assert run.step_runs.count() == 1 and len(server.log) == 1
    assert "HTTP 400" in run.error_message


def test_retries_stop_at_the_steps_limit(api):
    connection, server = api
    server.expect_request("/v1/x").respond_with_data("down", status=502)
    run = run_to_end(deployed_process(connection, '"/v1/x"', max_attempts=2))
    assert run.status == Run.Status.FAILED and len(server.log) == 2


def test_a_cancelled_run_is_not_executed(api, designer):
    connection, server = api
    process = deployed_process(connection, '"/v1/x"')
    run = run_services.run_start(process=process, trigger=Run.Trigger.UI, input={})
    assert run_services.run_cancel(run=run, actor=designer)
    assert work(run.pk) == Run.Status.CANCELLED
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED and "dana" in run.error_message
    assert not server.log


def test_rerun_from_the_failed_step_with_the_captures_it_had(api, designer):
    connection, server = api
    server.expect_request("/v1/one").respond_with_json({"id": "i_1"})
    server.expect_request("/v1/two/i_1").respond_with_json({"error": "x"}, status=404)
    process = deployed_process(connection, '"/v1/one"', '"/v1/two/" + events["step1.done"].body.id')
    failed = run_to_end(process)
    assert failed.status == Run.Status.FAILED and failed.next_position == 1
    server.clear()
    server.expect_request("/v1/two/i_1").respond_with_json({"done": True})
    again = run_services.run_rerun(run=failed, actor=designer)
    work(again.pk)
    again.refresh_from_db()
    assert again.status == Run.Status.SUCCEEDED
    assert [request.path for request, _ in server.log] == [
        "/v1/two/i_1"
    ]  # step one not called again


# A real worker closes "old" connections between tasks, which would end the test's
# wrapping transaction on PostgreSQL: this test commits for real instead.
@pytest.mark.django_db(transaction=True)
def test_webhook_runs_with_the_right_token(client, hooked):
    process, token, server = hooked
    url = reverse("webhook", args=[process.pk])
    response = client.post(
        url, {"a": 1}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 202
    run = Run.objects.get(pk=response.json()["run_id"])
    assert run.input == {"a": 1} and run.trigger == "webhook" and run.status == "queued"
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    run.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED


@pytest.mark.parametrize(
    "headers, body, status, message",
    [
        ({"HTTP_AUTHORIZATION": "Bearer wrong"}, b"{}", 403, "webhook token"),
        ({}, b"{}", 403, "webhook token"),
        ("good", b"{not json", 400, "not valid JSON"),
        ("good", b"[1, 2]", 400, "JSON object"),
        ("good", b'{"a": "' + b"x" * 300_000 + b'"}', 413, "larger than"),
    ],
)
def test_webhook_refusals(client, hooked, headers, body, status, message):
    process, token, _ = hooked
    if headers == "good":
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = client.post(
        reverse("webhook", args=[process.pk]), body, content_type="application/json", **headers
    )
    assert response.status_code == status
    assert message in response.json()["error"]
    assert not Run.objects.exists()


def test_rotating_the_token_retires_the_old_one(client, hooked):
    process, old, _ = hooked
    new = deployments.webhook_token_rotate(process=process)
    url = reverse("webhook", args=[process.pk])
    assert (
        client.post(
            url, {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {old}"
        ).status_code
        == 403
    )
    assert (
        client.post(
            url, {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {new}"
        ).status_code
        == 202
    )


def test_run_now_and_command_return_the_run_id(designer_client, hooked, capsys):
    process, _, _ = hooked
    response = designer_client.post(reverse("run-now", args=[process.pk]), {"input": '{"n": 1}'})
    run = Run.objects.get()
    assert response.url == run.get_absolute_url() and run.input == {"n": 1}
    bad = designer_client.post(reverse("run-now", args=[process.pk]), {"input": '{"n": '})
    assert bad.status_code == 400 and "not valid JSON" in bad.content.decode()
    call_command("run_process", str(process.pk), "--input", '{"n": 2}')
    assert Run.objects.get(pk=int(capsys.readouterr().out)).input == {"n": 2}


def test_run_history_pages(designer_client, hooked):
    process, _, _ = hooked
    done = run_to_end(process)
    queued = run_services.run_start(process=process, trigger=Run.Trigger.UI, input={})
    page = designer_client.get(reverse("process-runs", args=[process.pk])).content.decode()
    assert f"#{done.pk}" in page and f"#{queued.pk}" in page and 'hx-trigger="every 2s"' in page
    only_ok = designer_client.get(
        reverse("process-runs", args=[process.pk]), {"status": "succeeded"}
    )
    assert f"#{queued.pk}<" not in only_ok.content.decode()
    detail = designer_client.get(done.get_absolute_url()).content.decode()
    assert ">Steps<" in detail and "attempt 1 of 3" in detail and "GET https://127.0.0.1" in detail
    assert "hx-trigger" not in detail
    assert (
        'hx-trigger="every 1s"' in designer_client.get(queued.get_absolute_url()).content.decode()
    )


def test_step_runs_of_deployed_runs_mask_secrets(api):
    from tests.factories import MARKERS

    connection, server = api
    server.expect_request("/v1/x").respond_with_handler(
        lambda r: Response(
            json.dumps({"echo": r.headers.get("x-api-key")}), content_type="application/json"
        )
    )
    run = run_to_end(deployed_process(connection, '"/v1/x"'))
    stored = json.dumps(
        list(StepRun.objects.filter(run=run).values("request", "captured", "error_message"))
    )
    assert MARKERS["api_key_value"] not in stored


def test_only_drafts_are_listed(designer_client, api):
    connection, _ = api
    process = deployed_process(connection, '"/v1/a"')
    html = designer_client.get(reverse("process-list")).content.decode()
    assert process.name in html and f"{process.name} v1" not in html
    assert Process.objects.count() == 2


def test_deployed_versions_cannot_be_deleted_tested_or_given_samples(api, designer_client):
    connection, server = api
    process = deployed_process(connection, '"/v1/a"')
    version = process.live_version
    event = version.events.get()
    assert designer_client.post(reverse("process-delete", args=[version.pk])).status_code == 403
    assert designer_client.post(reverse("process-test", args=[version.pk])).status_code == 403
    sample = reverse("event-sample", args=[version.pk, event.pk])
    assert designer_client.post(sample, {"action": "save", "payload": "{}"}).status_code == 403
    assert Process.objects.filter(pk=version.pk).exists() and not server.log


def test_a_step_that_raises_fails_the_run_instead_of_hanging(api, monkeypatch):
    from cloudfunctions.step.kind import CloudFunctionKind

    connection, _ = api
    process = deployed_process(connection, '"/v1/a"')

    def explode(self, step, **kwargs):  # stands in for any bug in a step kind
        raise RuntimeError("SECRET-MARKER-boom")

    monkeypatch.setattr(CloudFunctionKind, "run", explode)
    run = run_to_end(process)
    assert run.status == Run.Status.FAILED
    attempt = run.step_runs.get()
    assert attempt.error_stage == "internal" and "SECRET-MARKER" not in attempt.error_message


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": NaN}',
        b'{"a": "\\u0000"}',
        b'{"a": "\\ud800"}',
        b'{"a": "\xed\xa0\x80"}',  # a surrogate encoded as such: json lets it through
        '{"a": "\\u0000"}'.encode("utf-16"),  # json reads UTF-16 too
    ],
)
def test_webhook_refuses_json_the_database_cannot_store(client, hooked, body):
    process, token, _ = hooked
    response = client.post(
        reverse("webhook", args=[process.pk]),
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 400 and not Run.objects.exists()


def test_long_names_still_deploy_and_duplicate(api, designer_client):
    connection, _ = api
    process = draft_process(connection, '"/v1/a"')
    process.name = "n" * 200
    process.save()
    deployments.process_deploy(process=process, actor=None)
    assert process.versions.get().name.endswith(" v1")
    designer_client.post(reverse("process-duplicate", args=[process.pk]))
    assert Process.objects.filter(name__endswith=" (copy)").exists()


def test_a_worker_sends_a_connections_new_key_after_deploy(api):
    """Workers cache a deployed version's steps, never its connections: they can be edited."""
    connection, server = api
    keys = []

    def record(request: Request) -> Response:
        keys.append(request.headers.get(connection.api_key_name))
        return Response("{}", content_type="application/json")

    server.expect_request("/v1/x").respond_with_handler(record)
    process = deployed_process(connection, '"/v1/x"')
    assert run_to_end(process).status == Run.Status.SUCCEEDED
    connection.api_key_value = "rotated-key-value"
    connection.save()
    assert run_to_end(process).status == Run.Status.SUCCEEDED
    assert keys[1] == "rotated-key-value" and keys[0] != keys[1]


def test_a_versions_steps_are_loaded_once_per_worker(api):
    connection, server = api
    server.expect_request("/v1/x").respond_with_json({})
    process = deployed_process(connection, '"/v1/x"', '"/v1/x"')
    run_to_end(process)
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with db_connection.execute_wrapper(record):
        assert run_to_end(process).status == Run.Status.SUCCEEDED
    tables = " ".join(statements)
    assert 'orchestration_step"' not in tables.replace("orchestration_steprun", "")
    assert "orchestration_completionevent" not in tables
    assert "cloudfunctions_connection" in tables  # connections are read for every run


def test_a_run_whose_worker_stopped_is_failed_and_can_be_rerun(api, designer, settings, capsys):
    settings.RUN_REAP_INTERVAL_SECONDS = 0
    connection, server = api
    server.expect_request("/v1/one").respond_with_json({"id": "i_1"})
    server.expect_request("/v1/two/i_1").respond_with_json({"done": True})
    process = deployed_process(connection, '"/v1/one"', '"/v1/two/" + events["step1.done"].body.id')
    silent = timezone.now() - timedelta(seconds=settings.RUN_STALE_AFTER_SECONDS + 60)
    # What a worker killed during step two leaves behind: running, silent since.
    lost = run_services.run_start(process=process, trigger=Run.Trigger.UI, input={})
    Run.objects.filter(pk=lost.pk).update(
        status=Run.Status.RUNNING,
        next_position=1,
        events={"step1.done": {"body": {"id": "i_1"}}},
        heartbeat_at=silent,
    )
    alive = run_services.run_start(process=process, trigger=Run.Trigger.UI, input={})
    Run.objects.filter(pk=alive.pk).update(status=Run.Status.RUNNING, heartbeat_at=timezone.now())

    assert run_to_end(process).status == Run.Status.SUCCEEDED  # any worker's next run sweeps
    lost.refresh_from_db()
    alive.refresh_from_db()
    assert (
        lost.status == Run.Status.FAILED and "worker running this run stopped" in lost.error_message
    )
    assert alive.status == Run.Status.RUNNING

    server.clear()
    server.expect_request("/v1/two/i_1").respond_with_json({"done": True})
    again = run_services.run_rerun(run=lost, actor=designer)
    assert work(again.pk) == Run.Status.SUCCEEDED
    assert [request.path for request, _ in server.log] == ["/v1/two/i_1"]

    Run.objects.filter(pk=alive.pk).update(heartbeat_at=silent)
    call_command("reap_runs")
    assert "1 stale run(s) failed." in capsys.readouterr().out


def test_a_running_run_shows_its_last_sign_of_life(api, designer_client):
    connection, _ = api
    run = run_services.run_start(
        process=deployed_process(connection, '"/v1/a"'), trigger="ui", input={}
    )
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=3)
    )
    html = designer_client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "Last sign of life" in html and "3\xa0minutes ago" in html


def test_the_admin_shows_deployed_versions_read_only(api, client, superuser):
    connection, _ = api
    version = deployed_process(connection, '"/v1/a"').live_version
    cf = CloudFunction.objects.get(step__process=version)
    client.force_login(superuser)
    pages = [
        reverse("admin:orchestration_process_change", args=[version.pk]),
        reverse("admin:cloudfunctions_cloudfunction_change", args=[cf.pk]),
        reverse("admin:orchestration_completionevent_change", args=[cf.completion_event_id]),
    ]
    for page in pages:
        assert client.get(page).status_code == 200  # can look
        assert client.post(page, {"name": "changed", "uri": '"/v2"'}).status_code == 403
    assert client.post(page.replace("/change/", "/delete/"), {"post": "yes"}).status_code == 403
    cf.refresh_from_db()
    assert cf.uri == '"/v1/a"' and Process.objects.filter(pk=version.pk).exists()
    draft_page = reverse("admin:orchestration_process_change", args=[version.version_of_id])
    assert b'name="_save"' in client.get(draft_page).content  # drafts stay editable


def test_the_admin_cannot_move_rows_into_a_deployed_version(api, client, superuser):
    connection, _ = api
    process = deployed_process(connection, '"/v1/a"')
    version = process.live_version
    client.force_login(superuser)
    added = client.post(
        reverse("admin:orchestration_completionevent_add"),
        {"name": "sneaked.in", "process": version.pk},
    )
    assert added.status_code == 200 and b"Select a valid choice" in added.content
    assert not version.events.filter(name="sneaked.in").exists()
    page = client.get(reverse("admin:orchestration_process_change", args=[process.pk]))
    assert b'name="webhook_token_hash"' not in page.content
    assert b'name="live_version"' not in page.content
