"""A run's page: its input, each step's request, output and attempts, and its JSON."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from werkzeug import Response

from orchestration.models import Run
from orchestration.runs import engine
from orchestration.runs import services as run_services
from tests.orchestration.run_builders import deployed_process, work

pytestmark = pytest.mark.django_db


@pytest.fixture
def retried_run(api):
    """A finished two-step run whose second step was refused once with 429, Retry-After 7."""
    connection, server = api
    server.expect_request("/v1/orders").respond_with_json({"id": "o_17", "lines": [{"sku": "A"}]})
    calls = []

    def limited(request):
        calls.append(1)
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "7"})
        return Response('{"charged": true}', content_type="application/json")

    server.expect_request("/v1/charges/o_17").respond_with_handler(limited)
    process = deployed_process(
        connection, '"/v1/orders"', '"/v1/charges/" + events["step1.done"].body.id'
    )
    run = run_services.run_start(
        process=process, trigger=Run.Trigger.WEBHOOK, input={"customer": {"email": "a@b.example"}}
    )
    assert work(run.pk) == Run.Status.SUCCEEDED
    return run


def test_the_run_page_shows_input_outputs_and_the_grouped_attempts(designer_client, retried_run):
    page = designer_client.get(retried_run.get_absolute_url()).content.decode()

    # The input, as a tree of the paths later steps map from.
    assert "trigger.customer.email" in page and "a@b.example" in page
    # Each step's output, as the same tree Test shows.
    assert "events[&quot;step1.done&quot;].body.lines[0].sku" in page
    assert "events[&quot;step2.done&quot;].body.charged" in page
    # The retry grouped under its step: why, and how long the run waited.
    assert "1 earlier attempt" in page and "HTTP 429" in page
    assert "waited 2.0 s (Retry-After 7 s)" in page
    assert "attempt 2 of 3" in page and page.count("Succeeded") >= 2


def test_a_waiting_run_says_when_it_retries_and_why(designer_client, api):
    connection, server = api
    server.expect_request("/v1/x").respond_with_data(
        "busy", status=503, headers={"Retry-After": "1"}
    )
    run = run_services.run_start(
        process=deployed_process(connection, '"/v1/x"'), trigger=Run.Trigger.UI, input={}
    )
    waiting = engine.execute(run.pk)

    page = designer_client.get(run.get_absolute_url()).content.decode()

    at = waiting.retry_at.strftime("%H:%M:%S")
    assert f"Retrying at {at} (attempt 2 of 3, Retry-After 1 s)" in page
    assert 'hx-trigger="every 1s"' in page  # still polled while it waits
    assert "Cancel run" in page


def test_the_run_downloads_as_json_with_every_attempt(designer_client, retried_run):
    response = designer_client.get(reverse("run-download", args=[retried_run.pk]))

    assert response["Content-Disposition"] == f'attachment; filename="run-{retried_run.pk}.json"'
    data = json.loads(response.content)
    assert data["input"] == {"customer": {"email": "a@b.example"}}
    charge = data["steps"][1]["attempts"]
    assert [a["outcome"] for a in charge] == ["failed", "succeeded"]
    assert charge[0]["retry_after_header_s"] == 7.0
    assert charge[1]["output"]["body"] == {"charged": True}
    assert data["steps"][0]["attempts"][0]["request"]["url"].endswith("/v1/orders")


def test_the_download_carries_no_secret(designer_client, retried_run):
    secret = retried_run.version.steps.first().cloud_function.connection.api_key_value
    body = designer_client.get(reverse("run-download", args=[retried_run.pk])).content.decode()
    assert secret and secret not in body
