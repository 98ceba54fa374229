"""Signs of life while a step is slow, the sweep for dead runs, and stopping a running run.

A second thread stands in for a second worker or a person: the loopback server's handler
acts while the worker is inside the request. The database is committed for real, so the
worker's heartbeat thread and the handler see the same rows.
"""

from __future__ import annotations

import time

import pytest
from django.db import connections
from werkzeug import Request, Response

from orchestration.models import Run
from orchestration.runs import liveness
from orchestration.runs import services as run_services
from tests.orchestration.run_builders import deployed_process, work

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(outbound_tls, tls_httpserver, settings):
    from tests.factories import ApiKeyConnectionFactory

    settings.RUN_STALE_AFTER_SECONDS = 0.5
    settings.RUN_REAP_INTERVAL_SECONDS = 3600
    return ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/").rstrip("/")), tls_httpserver


@pytest.fixture(autouse=True)
def fresh_heartbeat(monkeypatch):
    """A heartbeat thread of this test's own, started under its RUN_HEARTBEAT_SECONDS (an
    earlier test's thread may sleep through a long default interval)."""
    monkeypatch.setattr(liveness, "beating", liveness._Heartbeat().beating)


def _meanwhile(server, path, action):
    """Answer `path` after doing `action` from the server's thread, mid-request."""
    seen = []

    def handler(request: Request) -> Response:
        try:
            time.sleep(1.0)  # twice RUN_STALE_AFTER_SECONDS
            seen.append(action())
        finally:
            connections.close_all()  # this thread's own connection
        return Response("{}", content_type="application/json")

    server.expect_request(path).respond_with_handler(handler)
    return seen


@pytest.mark.parametrize("beat_every, survives", [(0.05, True), (60, False)])
def test_a_slow_step_keeps_its_run_alive_through_a_sweep(api, settings, beat_every, survives):
    settings.RUN_HEARTBEAT_SECONDS = beat_every
    connection, server = api
    reaped = _meanwhile(server, "/v1/slow", liveness.runs_reap_stale)
    run = run_services.run_start(
        process=deployed_process(connection, '"/v1/slow"'), trigger="ui", input={}
    )
    status = work(run.pk)
    run.refresh_from_db()
    if survives:
        assert reaped == [0] and status == run.status == Run.Status.SUCCEEDED
    else:  # without beats the step looks dead: what the heartbeat thread prevents
        assert reaped == [1] and status == run.status == Run.Status.FAILED
        assert "worker running this run stopped" in run.error_message


def test_cancelling_a_running_run_stops_it_before_the_next_step(api, designer):
    connection, server = api
    process = deployed_process(connection, '"/v1/slow"', '"/v1/next"')
    run = run_services.run_start(process=process, trigger="ui", input={})
    cancelled = _meanwhile(
        server, "/v1/slow", lambda: run_services.run_cancel(run=run, actor=designer)
    )
    server.expect_request("/v1/next").respond_with_json({})
    assert work(run.pk) == Run.Status.CANCELLED
    run.refresh_from_db()
    assert cancelled == [True] and run.status == Run.Status.CANCELLED
    assert [request.path for request, _ in server.log] == ["/v1/slow"]
