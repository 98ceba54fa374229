"""The defects of issue 13 that hostile upstreams found: S1 (a query key in urllib3's log),
S5 (Test connection storing what a token endpoint echoes), D4 (deep JSON crashing the
redactor) and D9 (one-character secrets), each replayed against real TLS servers."""

from __future__ import annotations

import base64
import io
import json
import logging
from urllib.parse import unquote_plus

import pytest
from werkzeug import Request, Response

from cloudfunctions.connections.forms import SECRET_TOO_SHORT, ConnectionForm
from cloudfunctions.connections.probe import connection_test_run
from cloudfunctions.http.redaction import MASK, MIN_SECRET_LENGTH
from cloudfunctions.models import Connection, ConnectionAuditEntry
from cloudfunctions.step.execution import CAPTURE_MAX_DEPTH, cloud_function_execute
from orchestration.models import StepRun
from orchestration.processes.services import step_run_record
from tests.factories import (
    MARKERS,
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    OAuthConnectionFactory,
)
from tests.security.spellings import as_text, leaks

pytestmark = pytest.mark.django_db


def _malformed_header_answer(sock) -> None:
    """Read a request, answer with a header line that has no colon (urllib3 warns on it)."""
    sock.settimeout(5)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk:
            return
        received += chunk
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        b"this line has no colon\r\nConnection: close\r\n\r\n{}"
    )


def _query_key_step(host: str):
    connection = ApiKeyConnectionFactory(
        base_url=f"https://{host}", api_key_location="query", api_key_name="key"
    )
    return CloudFunctionFactory(connection=connection, method="GET", uri='"/v1/x"', body="")


def test_s1_a_header_line_without_colon_logs_no_query_key(
    outbound_tls, tls_socket_server, caplog, scan
):
    caplog.set_level(logging.DEBUG)  # root at DEBUG: every logger without a level of its own
    cf = _query_key_step(tls_socket_server(_malformed_header_answer))

    result = cloud_function_execute(cloud_function=cf, context={})

    assert result.ok, result.error_message
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert scan("logs, header line without colon", logged) == 0


def test_s1_the_root_handlers_mask_what_a_library_logs_anyway(
    outbound_tls, tls_socket_server, scan
):
    # Should a library log a URL after all (urllib3 let through at DEBUG here), the filter
    # LOGGING installs on the root handlers masks the key and the credential-shaped text.
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    stream = io.StringIO()
    old_stream = handler.setStream(stream)
    urllib3_log = logging.getLogger("urllib3")
    level = urllib3_log.level
    urllib3_log.setLevel(logging.DEBUG)
    try:
        cf = _query_key_step(tls_socket_server(_malformed_header_answer))
        result = cloud_function_execute(cloud_function=cf, context={})
        logging.getLogger("some.library").warning(
            "GET /x?token=%s Authorization: Bearer %s", "t0ken-value-1", "b3arer-value-2"
        )
    finally:
        urllib3_log.setLevel(level)
        handler.setStream(old_stream)
    written = stream.getvalue()
    assert result.ok
    assert "Failed to parse headers" in written  # the record was written, masked
    assert "t0ken-value-1" not in written and "b3arer-value-2" not in written
    assert scan("console handler", written) == 0


def _echoing_token_endpoint(request: Request) -> Response:
    """A token endpoint that puts what it received (the Basic header) into its answer."""
    header = request.headers.get("Authorization", "")
    client_id, _, secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    token = "echoed-access-token-" + unquote_plus(secret)[-6:]
    answer = {
        "access_token": token,
        "token_type": header,  # "Basic <base64 of id:secret>"
        "scope": token,
        "expires_in": 3600,
    }
    return Response(json.dumps(answer), 200, content_type="application/json")


def test_s5_test_connection_stores_no_echoed_secret_or_token(
    outbound_tls, tls_httpserver, admin_user, scan
):
    tls_httpserver.expect_request("/oauth/token").respond_with_handler(_echoing_token_endpoint)
    connection = OAuthConnectionFactory(
        base_url=tls_httpserver.url_for("/api").rstrip("/"),
        token_url=tls_httpserver.url_for("/oauth/token"),
    )

    result = connection_test_run(connection=connection, actor=admin_user)

    assert result.ok
    stored = Connection.objects.get(pk=connection.pk)
    entry = stored.audit_entries.get(action=ConnectionAuditEntry.Action.TESTED)
    token = "echoed-access-token-" + MARKERS["client_secret"][-6:]
    places = [result.summary, stored.last_test_summary, entry.detail]
    for secret in (MARKERS["client_secret"], token):
        assert not any(leaks(place, secret) for place in places)
    assert "expires_in 3600" in stored.last_test_summary
    assert scan("S5 summary and audit", places) == 0


@pytest.mark.parametrize("depth", [850, 1200, 2500])
def test_d4_deeply_nested_json_fails_no_step_and_crashes_nothing(
    outbound_tls, tls_httpserver, designer, depth, scan
):
    deep = '{"a":' * depth + f'"{MARKERS["api_key_value"]}"' + "}" * depth
    tls_httpserver.expect_request("/api/deep").respond_with_data(
        deep, content_type="application/json"
    )
    connection = ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/api").rstrip("/"))
    cf = CloudFunctionFactory(connection=connection, method="GET", uri='"/deep"', body="")

    result = cloud_function_execute(cloud_function=cf, context={})

    # Deeper than the capture keeps as JSON: the answer is kept as text, secrets masked.
    assert depth > CAPTURE_MAX_DEPTH
    assert result.ok, result.error_message
    assert isinstance(result.payload["body"], str) and MASK in result.payload["body"]
    step_run_record(step=cf.step, actor=designer, result=result, is_test=True)
    stored = as_text(list(StepRun.objects.filter(step=cf.step).values("captured")))
    assert scan("D4 capture", stored) == 0


def test_d4_the_redactor_walks_any_depth_without_recursion():
    from cloudfunctions.http.redaction import Redactor

    value: object = MARKERS["api_key_value"]
    for _ in range(100_000):
        value = {"a": [value]}
    masked = Redactor([MARKERS["api_key_value"]])(value)
    for _ in range(100_000):
        masked = masked["a"][0]
    assert masked == MASK


@pytest.mark.parametrize("field", ["api_key_value", "client_secret", "secret_access_key"])
def test_d9_the_form_refuses_a_secret_shorter_than_the_minimum(field):
    base = {
        "api_key_value": {
            "name": "k",
            "provider": "custom",
            "auth_type": "api_key",
            "base_url": "https://api.example.com",
            "api_key_location": "header",
            "api_key_name": "X-Key",
        },
        "client_secret": {
            "name": "o",
            "provider": "custom",
            "auth_type": "oauth2",
            "base_url": "https://api.example.com",
            "client_id": "c",
            "token_url": "https://auth.example.com/token",
        },
        "secret_access_key": {
            "name": "a",
            "provider": "amazon_connect",
            "region": "eu-central-1",
            "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        },
    }[field]
    short = "k" * (MIN_SECRET_LENGTH - 1)
    form = ConnectionForm({**base, field: short})
    label = Connection.SECRET_FIELDS[field]
    assert form.errors[field] == [SECRET_TOO_SHORT.format(label=label, min=MIN_SECRET_LENGTH)]
    assert ConnectionForm({**base, field: "k" * MIN_SECRET_LENGTH}).is_valid()


def test_d9_a_short_secret_stored_earlier_masks_whole_values_only(outbound_tls, tls_httpserver):
    # A one-character key (stored before the form's rule) must not corrupt the capture.
    answer = {"key": "k", "text": "a kind key, kept as it is", "list": ["k", "kk"]}
    tls_httpserver.expect_request("/api/x").respond_with_json(answer)
    connection = ApiKeyConnectionFactory(
        base_url=tls_httpserver.url_for("/api").rstrip("/"), api_key_value="k"
    )
    cf = CloudFunctionFactory(connection=connection, method="GET", uri='"/x"', body="")

    result = cloud_function_execute(cloud_function=cf, context={})

    assert result.payload["body"] == {
        "key": MASK,
        "text": "a kind key, kept as it is",
        "list": [MASK, "kk"],
    }
