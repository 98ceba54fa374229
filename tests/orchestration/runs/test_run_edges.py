"""Edges of triggers, re-runs and run pages found by reviewing them: each answered clearly,
never with a 500, a stuck run or a page that polls for ever."""

from __future__ import annotations

import re
import socket
import threading

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse

from orchestration.jsontext import JSONTextError, NotAnObjectError, parse_json_object
from orchestration.management.commands.run_process import INPUT_NOT_OBJECT
from orchestration.models import Run
from orchestration.processes.forms import (
    SAMPLE_NOT_OBJECT,
    TEST_INPUT_NOT_OBJECT,
    ProcessForm,
    SamplePayloadForm,
)
from orchestration.runs import engine
from orchestration.runs import services as run_services
from orchestration.runs.views import RUN_INPUT_NOT_OBJECT, WEBHOOK_NOT_OBJECT
from tests.orchestration.run_builders import deployed_process, run_to_end

pytestmark = pytest.mark.django_db

HUGE_INT = b"9" * 5000


def _hook(client, process, body, *, token, scheme="Bearer", **extra):
    return client.post(
        reverse("webhook", args=[process.pk]),
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"{scheme} {token}",
        **extra,
    )


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"n": 1e999}', "the number 1e999 is too large to store at line 1, column 7"),
        (b'{\n  "n": -1e999}', "the number -1e999 is too large to store at line 2, column 8"),
        (b'{"note": "1e999", "n": 1e999}', "too large to store at line 1, column 24"),
        (b'{"n": ' + HUGE_INT + b"}", "a number has more than 4300 digits at line 1, column 7"),
    ],
)
def test_numbers_no_database_can_hold_are_refused_where_they_are(client, hooked, body, message):
    process, token, _ = hooked
    response = _hook(client, process, body, token=token)
    assert response.status_code == 400 and message in response.json()["error"]
    assert not Run.objects.exists()


def test_run_now_and_the_command_refuse_them_too_keeping_the_input(designer_client, hooked):
    process, _, _ = hooked
    typed = '{"amount": 1e999}'
    response = designer_client.post(reverse("run-now", args=[process.pk]), {"input": typed})
    html = response.content.decode()
    assert response.status_code == 400 and "too large to store at line 1, column 12" in html
    assert typed.replace('"', "&quot;") in html  # the textarea keeps what was typed
    with pytest.raises(CommandError, match="too large to store"):
        call_command("run_process", str(process.pk), "--input", typed)
    assert not Run.objects.exists()


@pytest.mark.parametrize("typed", ["[1, 2]", "3", '"text"', "null", "true"])
def test_every_input_that_must_be_an_object_says_so_in_its_own_words(
    client, designer_client, hooked, typed
):
    process, token, _ = hooked
    assert _hook(client, process, typed, token=token).json() == {"error": WEBHOOK_NOT_OBJECT}
    response = designer_client.post(reverse("run-now", args=[process.pk]), {"input": typed})
    html = response.content.decode()
    # The run-now form has no "body": it names its own field.
    assert response.status_code == 400 and RUN_INPUT_NOT_OBJECT in html
    assert WEBHOOK_NOT_OBJECT not in html
    with pytest.raises(CommandError, match=re.escape(INPUT_NOT_OBJECT)):
        call_command("run_process", str(process.pk), "--input", typed)
    form = ProcessForm({"name": "P", "description": "", "test_input": typed})
    assert form.errors["test_input"] == [TEST_INPUT_NOT_OBJECT]
    assert SamplePayloadForm({"payload": typed}).errors["payload"] == [SAMPLE_NOT_OBJECT]
    assert not Run.objects.exists()


def test_a_json_object_is_parsed_once_for_every_caller():
    assert parse_json_object(b'{"a": [1]}') == {"a": [1]}
    with pytest.raises(NotAnObjectError):
        parse_json_object("[]")
    with pytest.raises(JSONTextError, match="line 1, column 7"):
        parse_json_object('{"a": }')


def test_an_api_answering_such_a_number_still_finishes_the_run(api):
    connection, server = api
    server.expect_request("/v1/x").respond_with_data(
        b'{"total": 1e999}', content_type="application/json"
    )
    run = run_to_end(deployed_process(connection, '"/v1/x"'))
    assert run.status == Run.Status.SUCCEEDED
    assert run.events["step1.done"]["body"] == '{"total": 1e999}'  # the text, not a crash


def test_a_bearer_scheme_in_any_case_is_accepted(client, hooked):
    process, token, _ = hooked
    assert _hook(client, process, b"{}", token=token, scheme="bearer").status_code == 202
    assert _hook(client, process, b"{}", token=token, scheme="Basic").status_code == 403


def test_a_content_length_that_is_not_a_plain_number_is_refused(client, hooked):
    process, token, _ = hooked
    response = _hook(client, process, b"{}", token=token, CONTENT_LENGTH="²")
    assert response.status_code == 413 and not Run.objects.exists()


@pytest.mark.parametrize("command", ["run_process", "test_process"])
def test_commands_take_an_odd_process_id_as_a_name(command, hooked):
    with pytest.raises(CommandError, match="No single process matches '²'"):
        call_command(command, "²")


def test_a_failed_run_is_re_run_once(api, designer, designer_client):
    connection, server = api
    server.expect_request("/v1/x").respond_with_json({"error": "no"}, status=404)
    failed = run_to_end(deployed_process(connection, '"/v1/x"'))
    assert failed.status == Run.Status.FAILED
    url = reverse("run-rerun", args=[failed.pk])
    first = designer_client.post(url)
    second = designer_client.post(url, follow=True)  # a double click
    again = Run.objects.get(rerun_of=failed)  # one re-run, not two
    assert first.url == again.get_absolute_url()
    assert f"already re-run as run #{again.pk}" in second.content.decode()
    page = designer_client.get(failed.get_absolute_url()).content.decode()
    assert f'Re-run as <a href="{again.get_absolute_url()}">run #{again.pk}</a>' in page
    assert "Re-run from failed step" not in page
    with pytest.raises(run_services.RunRefused):
        run_services.run_rerun(run=failed, actor=designer)


def test_an_unexpected_error_around_the_steps_fails_the_run(api, monkeypatch, caplog):
    from cloudfunctions.step.kind import CloudFunctionKind

    connection, server = api
    process = deployed_process(connection, '"/v1/x"')

    def broken(self, steps):  # stands in for a database error while loading connections
        raise RuntimeError("SECRET-MARKER")

    monkeypatch.setattr(CloudFunctionKind, "bind", broken)
    run = run_to_end(process)
    assert run.status == Run.Status.FAILED and run.error_message == engine.RUN_CRASHED
    assert "RuntimeError" in caplog.text and "SECRET-MARKER" not in caplog.text
    assert "in broken" in caplog.text  # where it was raised, for whoever reads the log
    assert not server.log


def test_the_runs_page_polls_itself_after_a_post_and_pages_keep_the_filter(designer_client, hooked):
    process, _, _ = hooked
    for _ in range(30):
        run_services.run_start(process=process, trigger=Run.Trigger.UI, input={})
    rotated = designer_client.post(reverse("webhook-rotate", args=[process.pk]))
    runs_url = reverse("process-runs", args=[process.pk])
    # The token page was answered to a POST: its polling must ask the runs page, not the POST URL.
    assert f'hx-get="{runs_url}' in rotated.content.decode()
    page = designer_client.get(runs_url, {"status": "queued"}).content.decode()
    assert 'href="?status=queued&amp;page=2"' in page
    assert f'hx-get="{runs_url}?status=queued"' in page
    second = designer_client.get(runs_url, {"status": "queued", "page": 2})
    assert second.status_code == 200 and "Page 2 of 2" in second.content.decode()


# Committing for real: a run is queued once its row is committed, as in production.
@pytest.mark.django_db(transaction=True)
def test_a_run_the_queue_does_not_take_fails_saying_so(client, hooked, designer_client):
    # RQ pointed at a port where no Redis listens: enqueueing raises, as when Redis is down.
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed = probe.getsockname()[1]
    rq = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    queues = {"default": {"URL": f"redis://127.0.0.1:{closed}/0"}}
    process, token, _ = hooked
    with override_settings(TASKS=rq, RQ_QUEUES=queues):
        hooked_response = _hook(client, process, b'{"a": 1}', token=token)
        ui = designer_client.post(reverse("run-now", args=[process.pk]), {"input": "{}"})
        with pytest.raises(CommandError, match="could not be queued"):
            call_command("run_process", str(process.pk))
        first = Run.objects.order_by("pk").first()
        rerun = designer_client.post(reverse("run-rerun", args=[first.pk]), follow=True)
        assert f"Run #{first.pk + 3} could not be queued." in rerun.content.decode()
    assert hooked_response.status_code == 503
    assert hooked_response.json()["error"] == run_services.QUEUE_UNAVAILABLE
    runs = Run.objects.order_by("pk")
    assert [run.status for run in runs] == [Run.Status.FAILED] * 4
    assert runs[0].input == {"a": 1}  # kept, for a re-run from the top
    assert ui.url == runs[1].get_absolute_url()
    page = designer_client.get(ui.url).content.decode()
    assert run_services.QUEUE_UNAVAILABLE in page and "Re-run from failed step" in page


@pytest.mark.postgres  # SQLite has no row locks to race on
@pytest.mark.django_db(transaction=True)
def test_two_re_runs_at_the_same_moment_start_one_run(api, designer):
    connection, server = api
    server.expect_request("/v1/x").respond_with_json({"error": "no"}, status=404)
    failed = run_to_end(deployed_process(connection, '"/v1/x"'))
    barrier, outcomes = threading.Barrier(2), []

    def rerun():
        from django.db import connections

        barrier.wait()
        try:
            run_services.run_rerun(run=failed, actor=designer)
            outcomes.append("started")
        except run_services.RunRefused:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=rerun) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["refused", "started"]
    assert Run.objects.filter(rerun_of=failed).count() == 1
