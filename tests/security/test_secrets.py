"""Secrets never leave: every page, partial, log record, stored run and error is scanned."""

from __future__ import annotations

import json
import logging
import re
import socket

import pytest
from django.urls import reverse
from werkzeug import Response

from cloudfunctions.step.execution import cloud_function_execute
from orchestration.models import StepRun
from orchestration.processes.services import step_run_record
from tests.cloudfunctions.step.test_views import _post
from tests.factories import (
    MARKERS,
    AmazonConnectionFactory,
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    OAuthConnectionFactory,
)

pytestmark = pytest.mark.django_db


def _echo(request):
    """Answer with everything the request carried, in headers and body."""
    sent = {
        "headers": dict(request.headers),
        "args": dict(request.args),
        "form": dict(request.form),
        "body": request.get_data(as_text=True),
        "url": request.url,
    }
    headers = {f"X-Echo-{n}": v for n, v in request.headers.items() if n.lower() != "host"}
    headers.update({f"X-Arg-{n}": v for n, v in request.args.items()})
    return Response(json.dumps(sent), 200, headers, content_type="application/json")


@pytest.fixture
def world(outbound_tls, tls_httpserver, settings, oauth_token_server):
    """One connection of every kind, each used by a step, all pointing at an echo server."""
    settings.AMAZON_CONNECT_ENDPOINT_OVERRIDE = tls_httpserver.url_for("/aws").rstrip("/")
    tls_httpserver.expect_request(re.compile("^/(api|aws)/")).respond_with_handler(_echo)
    base = tls_httpserver.url_for("/api").rstrip("/")
    connections = {
        "api_key_header": ApiKeyConnectionFactory(base_url=base),
        "api_key_query": ApiKeyConnectionFactory(
            base_url=base, api_key_location="query", api_key_name="key"
        ),
        "oauth": OAuthConnectionFactory(
            base_url=base,
            token_url=oauth_token_server.token_url,
            client_id=oauth_token_server.client_id,
            client_secret=MARKERS["client_secret"],
        ),
        "amazon": AmazonConnectionFactory(),
    }
    oauth_token_server.client_secret = MARKERS["client_secret"]
    cfs = {
        kind: CloudFunctionFactory(
            connection=connection, method="GET", uri='"/v1/items"', body="", name=kind
        )
        for kind, connection in connections.items()
    }
    return connections, cfs


def _pages_as_admin(client, connections, cfs):
    pages = [client.get(reverse("connection-list"))]
    pages.append(client.get(reverse("connection-create")))
    for connection in connections.values():
        pk = connection.pk
        for name in ("connection-detail", "connection-edit", "connection-delete"):
            pages.append(client.get(reverse(name, args=[pk])))
        form = {"name": "", "provider": connection.provider, **MARKERS}
        pages.append(client.post(reverse("connection-edit", args=[pk]), form))
        pages.append(
            client.post(
                reverse("connection-edit", args=[pk]),
                {**form, "_refresh": "1"},
                HTTP_HX_REQUEST="1",
            )
        )
        pages.append(client.post(reverse("connection-test", args=[pk]), HTTP_HX_REQUEST="1"))
        pages.append(client.post(reverse("connection-test", args=[pk])))
        pages.append(client.get(reverse("connection-detail", args=[pk])))
    return pages


def _pages_as_designer(client, connections, cfs):
    pages = []
    for cf in cfs.values():
        step = cf.step
        url = reverse("step-editor", args=[step.process_id, step.pk])
        data = _post(
            step,
            cf.connection,
            method="GET",
            uri='"/v1/items"',
            body="",
            completion_event_choice="",
            new_event_name="",
            _action="test",
        )
        pages.append(client.post(url, data, HTTP_HX_REQUEST="true"))
        pages.append(client.get(url))
        pages.append(client.get(reverse("process-editor", args=[step.process_id])))
        check = reverse("cloud-function-check", args=[step.process_id, step.pk])
        pages.append(client.post(check, {"_field": "uri", "uri": '"/v1/" + events["x"].body'}))
        pages.append(client.post(reverse("process-test", args=[step.process_id]), follow=True))
    pages.append(client.get(reverse("connection-list")))
    pages.append(client.get(reverse("connection-detail", args=[cf.connection.pk])))  # 403
    pages.append(client.get("/no/such/page/"))  # 404
    pages.append(client.get(reverse("step-editor", args=[999999, 999999])))  # 404
    return pages


def _pages_as_superuser(client, connections, cfs):
    pages = [client.get("/admin/"), client.get("/admin/cloudfunctions/connection/")]
    for connection in connections.values():
        pages.append(client.get(f"/admin/cloudfunctions/connection/{connection.pk}/change/"))
        pages.append(client.get(f"/admin/cloudfunctions/connection/{connection.pk}/history/"))
        pages.append(client.get(f"/admin/cloudfunctions/connection/{connection.pk}/delete/"))
    for cf in cfs.values():
        pages.append(client.get(f"/admin/cloudfunctions/cloudfunction/{cf.pk}/change/"))
    for run in StepRun.objects.all():
        pages.append(client.get(f"/admin/orchestration/steprun/{run.pk}/change/"))
    pages.append(client.get("/admin/orchestration/steprun/"))
    pages.append(client.get("/admin/cloudfunctions/connectionauditentry/"))
    return pages


ROLES = {
    "connection administrator": ("admin_user", _pages_as_admin),
    "designer": ("designer", _pages_as_designer),
    "superuser": ("superuser", _pages_as_superuser),
}


@pytest.mark.parametrize("role", ROLES)
def test_pages_partials_and_logs(request, client, world, caplog, scan, role):
    caplog.set_level(logging.DEBUG)
    connections, cfs = world
    fixture, visit = ROLES[role]
    if role == "superuser":  # runs to look at in the admin
        for cf in cfs.values():
            result = cloud_function_execute(cloud_function=cf, context={})
            step_run_record(step=cf.step, actor=None, result=result, is_test=True)
    client.force_login(request.getfixturevalue(fixture))
    hits = 0
    for response in visit(client, connections, cfs):
        assert response.status_code < 500
        where = f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']}"
        hits += scan(where, response.content.decode())
        hits += scan(where + " headers", str(response.headers))
    hits += scan("logs", _app_logs(caplog))
    assert hits == 0


# werkzeug logs the test server's own access lines (it is the remote API, not this app);
# urllib3's DEBUG request lines are the subject of test_debug_logs_carry_no_query_key.
NOT_SCANNED_HERE = ("werkzeug", "urllib3.connectionpool")


def _app_logs(caplog) -> str:
    records = [r for r in caplog.records if r.name not in NOT_SCANNED_HERE]
    return "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records)


def test_debug_logs_carry_no_query_key(world, scan):
    # The app's own logging config, at DEBUG as LOG_LEVEL=DEBUG sets it; caplog would
    # override logger levels, so a handler on the root logger collects instead.
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        cloud_function_execute(cloud_function=world[1]["api_key_query"], context={})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = "\n".join(r.getMessage() for r in records if r.name != "werkzeug")
    assert scan("DEBUG logs", text) == 0


def _stored(model_rows):
    return json.dumps(list(model_rows), default=str)


@pytest.mark.parametrize("kind", ["api_key_header", "api_key_query", "oauth", "amazon"])
def test_echoed_secrets_are_masked_in_results_and_stored_runs(world, designer, scan, kind):
    connections, cfs = world
    cf = cfs[kind]
    result = cloud_function_execute(cloud_function=cf, context={})
    assert result.ok, result.error_message
    assert result.payload["body"]["headers"]  # the echo really carried the request back
    step_run_record(step=cf.step, actor=designer, result=result, is_test=True)
    hits = scan("result", [result.payload, result.request, result.error_message])
    hits += scan("step runs", _stored(StepRun.objects.values()))
    assert hits == 0


@pytest.fixture
def failing_dns(monkeypatch):
    """Make one name fail to resolve (no DNS server can be run here, so this is mocked)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "down.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAILURES = {
    "query key, DNS failure": lambda: ApiKeyConnectionFactory(
        base_url="https://down.example", api_key_location="query", api_key_name="key"
    ),
    "query key, connection refused": lambda: ApiKeyConnectionFactory(
        base_url=f"https://127.0.0.1:{_closed_port()}",
        api_key_location="query",
        api_key_name="key",
    ),
    "header key, DNS failure": lambda: ApiKeyConnectionFactory(base_url="https://down.example"),
    "oauth, token endpoint DNS failure": lambda: OAuthConnectionFactory(
        base_url="https://down.example", token_url="https://down.example/token"
    ),
    "oauth, token endpoint refused": lambda: OAuthConnectionFactory(
        token_url=f"https://127.0.0.1:{_closed_port()}/token"
    ),
}


@pytest.mark.parametrize("case", FAILURES)
def test_failed_executions_carry_no_secret(outbound_tls, failing_dns, designer, caplog, scan, case):
    caplog.set_level(logging.DEBUG)
    cf = CloudFunctionFactory(connection=FAILURES[case](), method="GET", body="")
    result = cloud_function_execute(cloud_function=cf, context={})
    assert not result.ok and result.error_stage in ("dns", "connect", "auth")
    run = step_run_record(step=cf.step, actor=designer, result=result, is_test=True)
    hits = scan("result", [result.payload, result.request, result.error_message])
    hits += scan("step run", _stored(StepRun.objects.filter(pk=run.pk).values()))
    hits += scan("logs", _app_logs(caplog))
    assert hits == 0
