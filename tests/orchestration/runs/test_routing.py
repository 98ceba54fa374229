"""Outcome routing in runs: which event an answer emits, which steps start, which are Skipped."""

from __future__ import annotations

import pytest
from django.urls import reverse
from werkzeug import Response

from orchestration.models import Run, StepRun
from orchestration.processes import deployments, routes
from orchestration.runs import engine
from orchestration.runs import services as run_services
from tests.factories import (
    CloudFunctionFactory,
    EventFactory,
    ProcessFactory,
    StepFactory,
)
from tests.orchestration.run_builders import deploy, run_to_end, work

pytestmark = pytest.mark.django_db


def _step(process, position, uri, *, event=None, outcomes=(), starts_on="", connection, result=""):
    return CloudFunctionFactory(
        step=StepFactory(
            process=process, position=position, name=f"Step {position}", starts_on=starts_on
        ),
        connection=connection,
        method="GET",
        uri=f'"{uri}"',
        body="",
        completion_event=EventFactory(process=process, name=event) if event else None,
        outcomes=list(outcomes),
        result=result,
    )


def _outcomes(run) -> dict[str, str]:
    return dict(run.step_runs.values_list("step__name", "outcome"))


@pytest.fixture
def look_up_order(api):
    """Look up order -> "order found" (2xx) or "order missing" (404); one step per branch."""
    connection, server = api
    process = ProcessFactory(name="Orders")
    EventFactory(process=process, name="order missing")  # as the editor creates it
    _step(
        process,
        1,
        "/orders/o_1",
        event="order found",
        outcomes=[{"when": "404", "event": "order missing"}],
        connection=connection,
    )
    _step(
        process,
        2,
        "/orders",
        event="order created",
        connection=connection,
        starts_on=routes.starts_on_event("order missing"),
    )
    _step(
        process,
        3,
        "/ship",
        event="shipped",
        connection=connection,
        starts_on=routes.starts_on_event("order found"),
    )
    server.expect_request("/orders").respond_with_json({"id": "o_1", "created": True})
    server.expect_request("/ship").respond_with_json({"shipped": True})
    return deploy(process), server


def test_a_404_routed_to_an_event_starts_the_step_on_it_and_skips_the_other(look_up_order):
    process, server = look_up_order
    server.expect_request("/orders/o_1").respond_with_json({"error": "nope"}, status=404)

    run = run_to_end(process)

    assert run.status == Run.Status.SUCCEEDED
    assert set(run.events) == {"order missing", "order created"}
    assert _outcomes(run) == {"Step 1": "succeeded", "Step 2": "succeeded", "Step 3": "skipped"}
    skipped = run.step_runs.get(step__name="Step 3")
    assert skipped.error_message == routes.SKIPPED.format(event="order found")
    assert [r.path for r, _ in server.log] == ["/orders/o_1", "/orders"]
    assert run.step_runs.get(step__name="Step 1").event.name == "order missing"


def test_a_2xx_takes_the_seeds_completion_event(look_up_order):
    process, server = look_up_order
    server.expect_request("/orders/o_1").respond_with_json({"id": "o_1"})

    run = run_to_end(process)

    assert run.status == Run.Status.SUCCEEDED
    assert _outcomes(run) == {"Step 1": "succeeded", "Step 2": "skipped", "Step 3": "succeeded"}


@pytest.mark.parametrize(
    ("rows", "status", "expected"),
    [
        # First match wins among rows of the same kind.
        ([{"when": "4xx", "event": "a"}, {"when": "4xx", "event": "b"}], 409, "a"),
        # An exact code wins over a class wherever it stands.
        ([{"when": "4xx", "event": "class"}, {"when": "409", "event": "exact"}], 409, "exact"),
        ([{"when": "409", "event": "exact"}, {"when": "4xx", "event": "class"}], 404, "class"),
        # A routed 2xx row replaces the completion event.
        ([{"when": "201", "event": "created"}], 201, "created"),
    ],
)
def test_routing_rules(api, rows, status, expected):
    connection, server = api
    server.expect_request("/x").respond_with_json({}, status=status)
    process = ProcessFactory()
    _step(process, 1, "/x", event="done", outcomes=rows, connection=connection)

    run = run_to_end(deploy(process))

    assert run.status == Run.Status.SUCCEEDED
    assert set(run.events) == {expected}


def test_an_unmatched_answer_fails_the_run_as_before(api):
    connection, server = api
    server.expect_request("/x").respond_with_json({}, status=500)
    process = ProcessFactory()
    _step(
        process,
        1,
        "/x",
        event="done",
        outcomes=[{"when": "404", "event": "missing"}],
        connection=connection,
    )

    run = run_to_end(deploy(process))

    assert run.status == Run.Status.FAILED and "HTTP 500" in run.error_message


def test_a_row_without_event_fails_the_run_and_says_it_was_routed(api):
    connection, server = api
    server.expect_request("/x").respond_with_json({}, status=409)
    process = ProcessFactory()
    _step(
        process,
        1,
        "/x",
        event="done",
        outcomes=[{"when": "409", "event": None}],
        connection=connection,
    )

    run = run_to_end(deploy(process))

    assert run.status == Run.Status.FAILED and "routed to Fail the run" in run.error_message


def test_a_connection_error_matches_only_the_error_row(api, settings):
    connection, server = api
    # Nothing listens on port 9 of loopback: the connection is refused.
    connection.base_url = "https://127.0.0.1:9"
    connection.save()
    process = ProcessFactory()
    _step(
        process,
        1,
        "/x",
        event="done",
        outcomes=[{"when": "5xx", "event": "server"}, {"when": "error", "event": "unreachable"}],
        connection=connection,
    )
    _step(
        process,
        2,
        "/y",
        event="noted",
        connection=connection,
        starts_on=routes.starts_on_event("unreachable"),
    )
    process = deploy(process)

    run = run_services.run_start(process=process, trigger=Run.Trigger.UI, input={})
    work(run.pk)
    run.refresh_from_db()

    assert "unreachable" in run.events and "server" not in run.events
    assert run.events["unreachable"]["stage"] == "connect"
    # Retried first (3 attempts), then routed; step 2 then fails the same way, unrouted.
    first = run.step_runs.filter(step__name="Step 1").order_by("attempt")
    assert list(first.values_list("outcome", flat=True)) == ["failed", "failed", "succeeded"]


def test_a_retryable_answer_is_retried_before_it_is_routed(api):
    connection, server = api
    calls = []

    def busy_then_gone(request):
        calls.append(1)
        return Response("busy", status=503 if len(calls) < 3 else 410)

    server.expect_request("/x").respond_with_handler(busy_then_gone)
    process = ProcessFactory()
    _step(
        process,
        1,
        "/x",
        event="done",
        outcomes=[{"when": "5xx", "event": "down"}, {"when": "410", "event": "gone"}],
        connection=connection,
    )

    run = run_to_end(deploy(process))

    assert len(calls) == 3 and set(run.events) == {"gone"}
    attempts = run.step_runs.order_by("attempt").values_list("outcome", flat=True)
    assert list(attempts) == [StepRun.Outcome.FAILED, StepRun.Outcome.FAILED, "succeeded"]


def test_the_last_attempts_503_is_routed(api):
    connection, server = api
    server.expect_request("/x").respond_with_data("busy", status=503)
    process = ProcessFactory()
    _step(
        process,
        1,
        "/x",
        event="done",
        outcomes=[{"when": "5xx", "event": "down"}],
        connection=connection,
    )

    outcome_of_first = engine.execute(
        run_services.run_start(process=deploy(process), trigger="ui", input={}).pk
    )

    assert outcome_of_first.status == Run.Status.RETRYING  # retried before routing
    run = Run.objects.get()
    assert work(run.pk) == Run.Status.SUCCEEDED and set(Run.objects.get().events) == {"down"}


def test_deploy_refuses_a_step_that_starts_on_an_event_no_earlier_step_emits(api):
    connection, _ = api
    process = ProcessFactory()
    _step(process, 1, "/x", event="done", connection=connection)
    _step(
        process,
        2,
        "/y",
        event="later",
        connection=connection,
        starts_on=routes.starts_on_event("never emitted"),
    )

    with pytest.raises(deployments.DeployRefused) as refused:
        deployments.process_deploy(process=process, actor=None)

    assert "Step 2" in str(refused.value)
    assert routes.STARTS_ON_UNKNOWN.format(event="never emitted") in str(refused.value)


def test_test_process_follows_the_same_routes(look_up_order, designer):
    from orchestration.processes import services

    draft, server = look_up_order
    server.expect_request("/orders/o_1").respond_with_json({}, status=404)

    runs = services.process_test_run(process=draft, actor=designer)

    assert [(r.step.name, r.outcome) for r in runs] == [
        ("Step 1", "succeeded"),
        ("Step 2", "succeeded"),
        ("Step 3", "skipped"),
    ]
    assert runs[0].event.name == "order missing"


def test_the_run_page_shows_the_routed_event_and_why_a_step_was_skipped(
    designer_client, look_up_order
):
    process, server = look_up_order
    server.expect_request("/orders/o_1").respond_with_json({}, status=404)
    run = run_to_end(process)

    page = designer_client.get(run.get_absolute_url()).content.decode()

    assert "emitted <code>order missing</code>" in page
    assert ">Skipped<" in page
    assert "it starts on “order found”, which this run did not emit" in page


def test_a_designer_sets_starts_on_from_the_events_earlier_steps_can_emit(
    designer_client, look_up_order
):
    draft, _ = look_up_order
    third = draft.steps.get(name="Step 3")
    page = designer_client.get(reverse("step-editor", args=[draft.pk, third.pk])).content.decode()
    # Offered: the process start, the previous step's event, and every event earlier
    # steps can emit, outcome routes included.
    for choice in ("Process start", "“order missing”", "“order found”", "“order created”"):
        assert choice in page

    response = designer_client.post(
        reverse("step-start", args=[draft.pk, third.pk]), {"starts_on": routes.PROCESS_START}
    )

    assert response.status_code == 302
    third.refresh_from_db()
    assert third.starts_on == routes.PROCESS_START
    # An event no earlier step emits is not offered, and refused if posted.
    refused = designer_client.post(
        reverse("step-start", args=[draft.pk, third.pk]),
        {"starts_on": routes.starts_on_event("shipped")},
    )
    assert refused.status_code == 302
    third.refresh_from_db()
    assert third.starts_on == routes.PROCESS_START


def test_result_shapes_what_the_event_carries_and_later_steps_map_from_it(api):
    connection, server = api
    server.expect_request("/orders/o_1").respond_with_json({"order": {"id": "o_1", "total": 7}})
    server.expect_request("/ship/o_1").respond_with_json({"ok": True})
    process = ProcessFactory()
    _step(
        process,
        1,
        "/orders/o_1",
        event="order found",
        connection=connection,
        result='{"id": response.body.order.id, "big": response.body.order.total > 5}',
    )
    CloudFunctionFactory(
        step=StepFactory(process=process, position=2, name="Ship"),
        connection=connection,
        method="GET",
        body="",
        uri='"/ship/" + events["order found"].id',
        completion_event=EventFactory(process=process, name="shipped"),
    )

    run = run_to_end(deploy(process))

    assert run.status == Run.Status.SUCCEEDED
    assert run.events["order found"] == {"id": "o_1", "big": True}
    assert [r.path for r, _ in server.log] == ["/orders/o_1", "/ship/o_1"]


def test_a_result_that_fails_fails_the_step_and_says_where(api):
    connection, server = api
    server.expect_request("/x").respond_with_json({"a": 1})
    process = ProcessFactory()
    _step(process, 1, "/x", event="done", connection=connection, result="response.body.nope")

    run = run_to_end(deploy(process))

    assert run.status == Run.Status.FAILED
    assert "Result:" in run.error_message and "nope" in run.error_message


def test_response_is_a_name_in_result_only(api):
    from cloudfunctions.cel import messages as cel_messages
    from cloudfunctions.step.checks import iter_problems

    connection, _ = api
    process = ProcessFactory()
    cf = _step(
        process, 1, "/x", event="done", connection=connection, result="response.status == 200"
    )
    cf.uri = '"/x/" + string(response.status)'
    problems = [str(p) for p in iter_problems(cf, known_events=set())]

    assert any(p.startswith("URI: " + cel_messages.RESPONSE_ONLY_IN_RESULT) for p in problems)
    assert not any(p.startswith("Result") for p in problems)


def test_an_outcome_row_with_an_impossible_when_is_a_problem(api):
    from cloudfunctions.step import outcomes
    from cloudfunctions.step.checks import iter_problems

    connection, _ = api
    cf = _step(
        ProcessFactory(),
        1,
        "/x",
        event="done",
        connection=connection,
        outcomes=[{"when": "4xy", "event": "x"}, {"when": "404", "event": "y"}],
    )

    problems = [str(p) for p in iter_problems(cf, known_events=set())]

    assert problems == [f"Outcome 1 when: {outcomes.WHEN_INVALID}"]


def test_a_steps_timeout_ends_its_call_and_routes_as_a_connection_error(api, settings):
    import time as _time

    connection, server = api
    settings.OUTBOUND_DEADLINE_SECONDS = 15

    def slow(request):
        _time.sleep(3)
        return Response("{}", content_type="application/json")

    server.expect_request("/slow").respond_with_handler(slow)
    process = ProcessFactory()
    cf = _step(
        process,
        1,
        "/slow",
        event="done",
        connection=connection,
        outcomes=[{"when": "error", "event": "too slow"}],
    )
    cf.timeout_seconds = 1
    cf.save()
    cf.step.max_attempts = 1
    cf.step.save()

    run = run_to_end(deploy(process))

    assert set(run.events) == {"too slow"}
    assert run.events["too slow"]["stage"] == "timeout"
    assert "within 1 seconds" in run.events["too slow"]["error"]


def test_the_input_panel_marks_events_another_route_may_leave_out(designer_client, look_up_order):
    from cloudfunctions.step.views import MAY_BE_ABSENT

    draft, _ = look_up_order
    for event in draft.events.all():
        event.sample_payload = {"status": 200, "body": {"event": event.name}}
        event.save()
    ship = draft.steps.get(name="Step 3")  # starts on "order found"

    page = designer_client.get(reverse("step-editor", args=[draft.pk, ship.pk])).content.decode()

    assert "order found (sample)<" in page  # on its path: certain
    assert f"order missing (sample){MAY_BE_ABSENT}" in page
    assert f"order created (sample){MAY_BE_ABSENT}" in page
