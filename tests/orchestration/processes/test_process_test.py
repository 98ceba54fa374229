"""Test process: every step in order, each on the captures of the ones before."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from orchestration.models import StepRun
from orchestration.processes.services import PROCESS_TEST_TOO_MANY_STEPS, STEP_NOT_SENT
from orchestration.web import throttle
from tests.factories import (
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
    ProcessFactory,
    StepFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_steps(outbound_tls, tls_httpserver):
    connection = ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/").rstrip("/"))
    process = ProcessFactory(test_input={"customer": "c_1"})
    first = CloudFunctionFactory(
        step=StepFactory(process=process, position=1),
        connection=connection,
        method="GET",
        body="",
        uri='"/customers/" + trigger.customer',
        completion_event=EventFactory(process=process, name="customer.found"),
    )
    second = CloudFunctionFactory(
        step=StepFactory(process=process, position=2),
        connection=connection,
        method="GET",
        body="",
        uri='"/charges/" + events["customer.found"].body.charge',
        completion_event=EventFactory(process=process, name="charge.found"),
    )
    return process, first, second, tls_httpserver


def test_steps_run_in_order_on_each_others_captures(two_steps, designer_client):
    process, first, second, server = two_steps
    server.expect_request("/customers/c_1").respond_with_json({"charge": "ch_5"})
    server.expect_request("/charges/ch_5").respond_with_json({"amount": 7})
    response = designer_client.post(reverse("process-test", args=[process.pk]))
    assert response.status_code == 302
    runs = StepRun.objects.order_by("pk")
    assert [r.outcome for r in runs] == ["succeeded", "succeeded"]
    assert runs[1].captured["body"] == {"amount": 7}
    html = designer_client.get(process.get_absolute_url()).content.decode()
    assert html.count("Last test: Succeeded") == 2


def test_stops_at_the_first_failure_with_the_reason(two_steps, designer_client):
    process, first, second, server = two_steps
    server.expect_request("/customers/c_1").respond_with_json({"nope": 1}, status=404)
    designer_client.post(reverse("process-test", args=[process.pk]))
    runs = list(StepRun.objects.all())
    assert len(runs) == 1 and runs[0].outcome == "failed"
    html = designer_client.get(process.get_absolute_url(), follow=True).content.decode()
    assert "Last test: Failed" in html


def test_a_step_not_configured_yet_stops_the_test_with_the_reason(two_steps, designer_client):
    process, first, second, server = two_steps
    server.expect_request("/customers/c_1").respond_with_json({"charge": "ch_5"})
    StepFactory(process=process, position=0, name="Added just now")  # no cloud function
    response = designer_client.post(reverse("process-test", args=[process.pk]), follow=True)
    assert response.status_code == 200
    (run,) = StepRun.objects.all()
    assert (run.outcome, run.error_message) == ("failed", "Configure the cloud function.")
    assert not server.log


def test_management_command_prints_captures_as_json(two_steps, capsys):
    process, first, second, server = two_steps
    server.expect_request("/customers/c_1").respond_with_json({"charge": "ch_5"})
    server.expect_request("/charges/ch_5").respond_with_json({"amount": 7})
    call_command("test_process", str(process.pk))
    output = json.loads(capsys.readouterr().out)
    assert output["events"]["charge.found"]["body"] == {"amount": 7}
    server.clear()
    server.expect_request("/customers/c_1").respond_with_json({}, status=500)
    with pytest.raises(CommandError, match="failed"):
        call_command("test_process", process.name)


def test_pinned_sample_is_used_for_mapping(two_steps, designer_client):
    process, first, second, server = two_steps
    event = first.completion_event
    url = reverse("event-sample", args=[process.pk, event.pk])
    designer_client.post(url, {"action": "save", "payload": '{"body": {"charge": "ch_s"}}'})
    event.refresh_from_db()
    assert event.sample_payload == {"body": {"charge": "ch_s"}}
    html = designer_client.get(
        reverse("step-editor", args=[process.pk, second.step.pk])
    ).content.decode()
    assert 'value="events[&quot;customer.found&quot;].body.charge"' in html and "(sample)" in html
    response = designer_client.post(url, {"action": "save", "payload": "[1,"}, follow=True)
    assert "Not valid JSON" in response.content.decode()
    assert designer_client.post(url, {"action": "pin"}, follow=True).status_code == 200
    event.refresh_from_db()
    assert event.sample_payload == {"body": {"charge": "ch_s"}}  # never emitted: kept


def test_a_refused_sample_keeps_what_was_typed(two_steps, designer_client):
    process, first, _, _ = two_steps
    event = first.completion_event
    url = reverse("event-sample", args=[process.pk, event.pk])
    typed = '{"body": {"charge": "ch_typed",}}'  # a trailing comma
    response = designer_client.post(
        url, {"action": "save", "payload": typed, "step": first.step.pk}, follow=True
    )
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse(
        "step-editor", args=[process.pk, first.step.pk]
    )
    assert "Not valid JSON" in html
    assert "{&quot;body&quot;: {&quot;charge&quot;: &quot;ch_typed&quot;,}}</textarea>" in html
    assert (
        'aria-invalid="true"' in html and '<details class="card" id="sample-payload" open>' in html
    )
    event.refresh_from_db()
    assert event.sample_payload is None
    # Shown once: the next visit shows the stored sample again.
    again = designer_client.get(reverse("step-editor", args=[process.pk, first.step.pk]))
    assert "ch_typed" not in again.content.decode()


def test_a_sample_with_a_strange_step_number_still_answers(two_steps, designer_client):
    process, first, _, _ = two_steps
    url = reverse("event-sample", args=[process.pk, first.completion_event_id])
    response = designer_client.post(url, {"action": "save", "payload": "{}", "step": "²"})
    assert response.status_code == 302 and response["Location"] == reverse(
        "process-editor", args=[process.pk]
    )


def test_a_process_whose_steps_may_change_data_is_tested_on_a_yes(two_steps, designer_client):
    process, first, second, server = two_steps
    server.expect_request("/customers/c_1", method="POST").respond_with_json({"charge": "ch_5"})
    server.expect_request("/charges/ch_5").respond_with_json({"amount": 7})
    first.method, first.body = "POST", "{}"
    first.save()
    url = reverse("process-test", args=[process.pk])

    asked = designer_client.post(url)
    html = asked.content.decode()
    assert asked.status_code == 200 and "may change data elsewhere" in html
    assert f"{first.step.name}: POST to 127.0.0.1:{server.port}" in html
    assert second.step.name + ":" not in html  # a GET only reads
    assert not server.log and not StepRun.objects.exists()

    digest = re.search(r'name="confirmed" value="(\w+)"', html).group(1)
    second.method, second.body = "DELETE", ""
    second.save()  # meanwhile: the yes was not to this
    again = designer_client.post(url, {"confirmed": digest})
    assert "steps changed since you were asked" in again.content.decode()
    assert f"{second.step.name}: DELETE to" in again.content.decode() and not server.log

    server.expect_request("/charges/ch_5", method="DELETE").respond_with_json({})
    digest = re.search(r'name="confirmed" value="(\w+)"', again.content.decode()).group(1)
    done = designer_client.post(url, {"confirmed": digest})
    assert done.status_code == 302 and len(server.log) == 2


# Issue 13, D6: a Test process once counted as one Test run however many requests it sent.


def test_each_step_sent_spends_one_test_run(two_steps, designer_client, designer, settings):
    process, first, second, server = two_steps
    settings.TEST_RUN_LIMIT = 3
    server.expect_request("/customers/c_1").respond_with_json({"charge": "ch_5"})
    server.expect_request("/charges/ch_5").respond_with_json({"amount": 7})
    designer_client.post(reverse("process-test", args=[process.pk]))
    assert len(server.log) == 2
    throttle.check_test_run_allowed(designer)  # the third of three
    with pytest.raises(throttle.Throttled):
        throttle.check_test_run_allowed(designer)


def test_the_test_stops_where_the_test_runs_ran_out(two_steps, designer_client, settings):
    process, first, second, server = two_steps
    settings.TEST_RUN_LIMIT = 1
    server.expect_request("/customers/c_1").respond_with_json({"charge": "ch_5"})
    server.expect_request("/charges/ch_5").respond_with_json({"amount": 7})
    response = designer_client.post(reverse("process-test", args=[process.pk]), follow=True)
    assert response.status_code == 200
    assert len(server.log) == 1  # the second request was never sent
    sent, stopped = StepRun.objects.order_by("pk")
    assert (sent.outcome, stopped.outcome, stopped.step_id) == (
        "succeeded",
        "failed",
        second.step_id,
    )
    reason = STEP_NOT_SENT.format(reason="Too many Test runs; try again in ")
    assert stopped.error_stage == "throttled" and stopped.error_message.startswith(reason)
    html = response.content.decode()
    assert f"Test stopped at step “{second.step.name}”: {reason}" in html


def test_a_process_over_the_step_cap_is_refused_before_anything_is_sent(designer_client):
    process = ProcessFactory()
    for position in range(51):
        StepFactory(process=process, position=position)
    response = designer_client.post(reverse("process-test", args=[process.pk]), follow=True)
    assert response.status_code == 200
    message = PROCESS_TEST_TOO_MANY_STEPS.format(count=51, limit=50)
    assert message in response.content.decode()
    assert not StepRun.objects.exists()


def test_a_process_at_the_step_cap_is_tested(two_steps, designer_client, settings):
    process, first, second, server = two_steps
    settings.PROCESS_TEST_STEP_LIMIT = 2
    server.expect_request("/customers/c_1").respond_with_json({"charge": "ch_5"})
    server.expect_request("/charges/ch_5").respond_with_json({"amount": 7})
    response = designer_client.post(reverse("process-test", args=[process.pk]), follow=True)
    assert "2 steps succeeded." in response.content.decode()
    StepFactory(process=process, position=3)
    response = designer_client.post(reverse("process-test", args=[process.pk]), follow=True)
    assert PROCESS_TEST_TOO_MANY_STEPS.format(count=3, limit=2) in response.content.decode()
    assert len(server.log) == 2 and StepRun.objects.count() == 2


def test_the_process_page_shows_each_steps_result_after_a_test(two_steps, designer_client):
    process, first, second, server = two_steps
    server.expect_request("/customers/c_1").respond_with_json({"charge": "ch_5"})
    server.expect_request("/charges/ch_5").respond_with_json({"error": "gone"}, status=404)

    page = designer_client.post(
        reverse("process-test", args=[process.pk]), follow=True
    ).content.decode()

    assert "Last Test process" in page
    # Step one: its answer and its output as the tree to map from.
    assert "emitted <code>customer.found</code>" in page
    assert "events[&quot;customer.found&quot;].body.charge" in page
    # Step two: why it failed, and the answer it got.
    assert "HTTP 404" in page and "response.body.error" in page
    assert page.count("Request as sent (secrets masked)") >= 2
    # A reload shows the same results and sends nothing again.
    server.clear()
    again = designer_client.get(process.get_absolute_url()).content.decode()
    assert "Last Test process" in again and not server.log
