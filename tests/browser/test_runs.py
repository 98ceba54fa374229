"""A designer deploys a tested process, runs it, and watches the run finish."""

from __future__ import annotations

import re

from django.core.management import call_command
from playwright.sync_api import expect
from werkzeug import Response

from orchestration.runs import services as run_services
from tests.browser.conftest import sign_in
from tests.factories import (
    PASSWORD,
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
    ProcessFactory,
    StepFactory,
)
from tests.orchestration.run_builders import deployed_process, work


def test_deploy_run_and_watch_it_finish(page, live_server, designer, outbound_tls, tls_httpserver):
    tls_httpserver.expect_request("/v1/ping").respond_with_json({"pong": True})
    process = ProcessFactory(name="Ping")
    CloudFunctionFactory(
        step=StepFactory(process=process, name="Ping it"),
        connection=ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/").rstrip("/")),
        method="GET",
        uri='"/v1/ping"',
        body="",
        completion_event=EventFactory(process=process, name="ping.done"),
    )
    sign_in(page, designer.username, PASSWORD)
    page.goto(f"/processes/{process.pk}/")
    page.get_by_role("link", name="Runs and deployments").click()
    expect(page.get_by_text("Not deployed yet")).to_be_visible()
    page.get_by_role("button", name="Deploy").click()
    expect(page.get_by_text("Deployed version 1")).to_be_visible()
    page.get_by_label("Run now with input (JSON)").fill('{"who": "browser"}')
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#run-status")).to_have_text("Queued")
    # The worker that scripts/run starts beside the server; here one batch, in this thread
    # (db_worker installs signal handlers, which only the main thread may do).
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=15_000)
    step = page.get_by_role("article", name="1. Ping it")
    expect(step).to_contain_text("attempt 1 of 3")
    expect(step.get_by_role("list", name="Output of Ping it")).to_contain_text("pong")


def test_a_run_page_stops_polling_once_its_run_is_gone(page, live_server, designer):

    connection = ApiKeyConnectionFactory(base_url="https://api.example.com")
    process = deployed_process(connection, '"/v1/x"')
    run = run_services.run_start(process=process, trigger="ui", input={})
    sign_in(page, designer.username, PASSWORD)
    page.goto(run.get_absolute_url())
    expect(page.locator("#run-status")).to_have_text("Queued")
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    process.delete()  # and its runs with it

    expect(page.get_by_role("status")).to_contain_text("server answered 404")
    polled = len(requests)
    page.wait_for_timeout(2500)  # two more polls, were it still polling
    assert len(requests) == polled


def test_a_finished_run_reads_as_input_steps_outputs_and_grouped_attempts(
    page, live_server, designer, outbound_tls, tls_httpserver, settings
):
    settings.RUN_RETRY_MAX_DELAY_SECONDS = 2
    calls = []

    def limited(request):
        calls.append(1)
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "7"})
        return Response('{"charged": true}', content_type="application/json")

    tls_httpserver.expect_request("/v1/orders").respond_with_json({"id": "o_9"})
    tls_httpserver.expect_request("/v1/charges/o_9").respond_with_handler(limited)
    connection = ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/").rstrip("/"))
    process = deployed_process(
        connection, '"/v1/orders"', '"/v1/charges/" + events["step1.done"].body.id'
    )
    run = run_services.run_start(process=process, trigger="webhook", input={"order": "o_9"})
    assert work(run.pk) == "succeeded"

    sign_in(page, designer.username, PASSWORD)
    page.goto(run.get_absolute_url())

    expect(page.get_by_role("list", name="Run input")).to_contain_text("trigger.order")
    charge = page.locator("article.run-step").nth(1)
    expect(charge.get_by_role("list", name=re.compile("^Output of"))).to_contain_text("charged")
    expect(charge.locator(".badge")).to_have_text("Succeeded")
    charge.get_by_text("1 earlier attempt").click()
    expect(charge.get_by_role("listitem").filter(has_text="Attempt 1")).to_contain_text(
        "waited 2.0 s (Retry-After 7 s)"
    )


def test_test_process_reads_each_steps_result(
    page, live_server, designer, outbound_tls, tls_httpserver
):
    tls_httpserver.expect_request("/v1/orders").respond_with_json({"id": "o_3"})
    tls_httpserver.expect_request("/v1/charges/o_3").respond_with_json({"paid": False}, status=402)
    connection = ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/").rstrip("/"))
    process = ProcessFactory(name="Orders")
    for position, (name, uri, event) in enumerate(
        [
            ("Find order", '"/v1/orders"', "order.found"),
            ("Charge it", '"/v1/charges/" + events["order.found"].body.id', "charged"),
        ],
        start=1,
    ):
        CloudFunctionFactory(
            step=StepFactory(process=process, position=position, name=name),
            connection=connection,
            method="GET",
            uri=uri,
            body="",
            completion_event=EventFactory(process=process, name=event),
        )
    sign_in(page, designer.username, PASSWORD)
    page.goto(f"/processes/{process.pk}/")

    page.get_by_role("button", name="Test process").click()

    results = page.get_by_role("region", name="Last Test process")
    first = results.get_by_role("article", name=re.compile("^1. Find order"))
    expect(first.locator(".badge")).to_have_text("Succeeded")
    expect(first.get_by_role("list", name="Output of Find order")).to_contain_text("o_3")
    second = results.get_by_role("article", name=re.compile("^2. Charge it"))
    expect(second.locator(".badge")).to_have_text("Failed")
    expect(second).to_contain_text("HTTP 402")
