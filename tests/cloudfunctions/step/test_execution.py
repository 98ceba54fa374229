"""The execution service against real TLS servers on loopback."""

from __future__ import annotations

import json
import threading
import time

import pytest
from werkzeug import Request, Response

from cloudfunctions.http import errors
from cloudfunctions.http.headers import HEADER_SET_WHEN_SENT
from cloudfunctions.http.redaction import MASK
from cloudfunctions.http.url_builder import URI_CHANGES_HOST, URI_CLIMBS_OUT, UnsafeURI, build_url
from cloudfunctions.step.checks import iter_problems
from cloudfunctions.step.execution import BODY_NOT_FINITE, cloud_function_execute
from tests.clock import GENEROUS_SECONDS
from tests.factories import (
    MARKERS,
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
)

pytestmark = pytest.mark.django_db

CONTEXT = {
    "trigger": {"customer": "cus 42", "env": "production"},
    "events": {"customer.found": {"status": 200, "headers": {}, "body": {"id": "c_9"}}},
}


@pytest.fixture
def api(outbound_tls, tls_httpserver):
    """A Custom API-key connection to the loopback TLS server."""
    connection = ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/api").rstrip("/"))
    return connection, tls_httpserver


def _cf(connection, **kwargs):
    defaults = {"connection": connection, "method": "GET", "uri": '"/v1/charges"', "body": ""}
    return CloudFunctionFactory(**{**defaults, **kwargs})


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_each_method_with_evaluated_query_and_headers(api, method):
    connection, server = api
    seen = {}

    def handler(request: Request) -> Response:
        seen.update(
            method=request.method,
            path=request.path,
            args=dict(request.args),
            header=request.headers.get("X-Customer"),
            key=request.headers.get("x-api-key"),
            body=request.get_data(as_text=True),
        )
        return Response(json.dumps({"id": "ch_1", "ok": True}), content_type="application/json")

    server.expect_request("/api/v1/customers/c_9/charges").respond_with_handler(handler)
    cf = _cf(
        connection,
        method=method,
        uri='"/v1/customers/" + events["customer.found"].body.id + "/charges"',
        query_params=[{"key": '"environment"', "value": "trigger.env"}],
        headers=[{"key": '"X-Customer"', "value": "trigger.customer"}],
        body='{"amount": 100}' if method != "GET" else "",
    )
    result = cloud_function_execute(cloud_function=cf, context=CONTEXT)
    assert result.ok, result.error_message
    assert seen["method"] == method
    assert seen["args"] == {"environment": "production"}
    assert seen["header"] == "cus 42"
    assert seen["key"] == MARKERS["api_key_value"]
    assert seen["body"] == ("" if method == "GET" else '{"amount":100}')
    assert result.payload["status"] == 200
    assert result.payload["body"] == {"id": "ch_1", "ok": True}
    assert result.payload["headers"]["content-type"] == "application/json"
    assert result.payload["duration_ms"] > 0


def test_cel_body_and_text_response(api):
    connection, server = api
    server.expect_request("/api/v1/echo", method="POST").respond_with_handler(
        lambda r: Response(r.get_data(), content_type="text/plain")
    )
    cf = _cf(
        connection,
        method="POST",
        uri='"/v1/echo"',
        body_mode="cel",
        body='{"customer": events["customer.found"].body.id, "n": 1 + 1}',
    )
    result = cloud_function_execute(cloud_function=cf, context=CONTEXT)
    assert json.loads(result.payload["body"]) == {"customer": "c_9", "n": 2}


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_error_statuses_are_captured_results(api, status):
    connection, server = api
    server.expect_request("/api/v1/charges").respond_with_json({"error": "nope"}, status=status)
    result = cloud_function_execute(cloud_function=_cf(connection), context=CONTEXT)
    assert not result.ok
    assert result.payload == {
        "status": status,
        "headers": result.payload["headers"],
        "body": {"error": "nope"},
        "duration_ms": result.payload["duration_ms"],
        "truncated": False,
    }
    assert result.error_stage == "http" and str(status) in result.error_message
    assert result.retryable is (status >= 500)


def test_redirects_are_not_followed(api):
    connection, server = api
    server.expect_request("/api/v1/charges").respond_with_data(
        "", status=302, headers={"Location": "https://169.254.169.254/latest/meta-data/"}
    )
    result = cloud_function_execute(cloud_function=_cf(connection), context=CONTEXT)
    assert result.payload["status"] == 302
    assert len(server.log) == 1


def test_oversized_body_is_truncated(api, settings):
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 1000
    connection, server = api
    server.expect_request("/api/v1/charges").respond_with_data("x" * 50_000)
    result = cloud_function_execute(cloud_function=_cf(connection), context=CONTEXT)
    assert result.payload["truncated"] is True
    assert len(result.payload["body"]) == 1000


def test_a_stalled_server_hits_the_deadline(outbound_tls, tls_socket_server, settings):
    settings.OUTBOUND_DEADLINE_SECONDS = 1.0
    released = threading.Event()  # the server stalls for a minute unless the test ends first
    host = tls_socket_server(lambda sock: (sock.recv(65536), released.wait(60)))
    cf = _cf(ApiKeyConnectionFactory(base_url=f"https://{host}"))
    started = time.monotonic()
    try:
        result = cloud_function_execute(cloud_function=cf, context=CONTEXT)
    finally:
        released.set()
    assert time.monotonic() - started < GENEROUS_SECONDS
    assert result.error_stage == "timeout" and result.retryable
    assert result.error_message == errors.OUTBOUND_DEADLINE.format(host=host, seconds=1.0)


def test_connection_refused(outbound_tls):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cf = _cf(ApiKeyConnectionFactory(base_url=f"https://127.0.0.1:{port}"))
    result = cloud_function_execute(cloud_function=cf, context=CONTEXT)
    assert result.error_stage == "connect"
    assert result.error_message == errors.OUTBOUND_CONNECT_FAILED.format(host=f"127.0.0.1:{port}")


@pytest.mark.parametrize(
    "uri", ['"//evil.example/x"', '"https://evil.example/x"', '"/../admin"', '"/a/%2e%2e/b"']
)
def test_uris_that_try_to_leave_the_base_url_are_refused(api, uri):
    connection, server = api
    result = cloud_function_execute(cloud_function=_cf(connection, uri=uri), context=CONTEXT)
    assert result.error_stage == "url"
    assert not server.log


@pytest.mark.parametrize(
    "base, uri, query, expected",
    [
        ("https://api.example.com", "/v1/charges", [], "https://api.example.com/v1/charges"),
        (
            "https://api.example.com/v2/",
            "/x y",
            [("a b", "c&d")],
            "https://api.example.com/v2/x%20y?a%20b=c%26d",
        ),
        (
            "https://api.example.com:8443/p",
            "/q?limit=10",
            [("k", "v")],
            "https://api.example.com:8443/p/q?limit=10&k=v",
        ),
        ("https://api.example.com", "/@evil.example", [], "https://api.example.com/@evil.example"),
    ],
)
def test_build_url(base, uri, query, expected):
    assert build_url(base, uri, query) == expected


@pytest.mark.parametrize(
    "uri, message",
    [
        ("//evil.example", URI_CHANGES_HOST),
        ("/a/../../b", URI_CLIMBS_OUT),
        ("/%2E%2E/b", URI_CLIMBS_OUT),
        # Servers such as Tomcat drop ";parameters" before resolving dot segments.
        ("/..;/admin", URI_CLIMBS_OUT),
        ("/a/.;x/b", URI_CLIMBS_OUT),
    ],
)
def test_build_url_refusals(uri, message):
    with pytest.raises(UnsafeURI, match=message.replace(".", r"\.")):
        build_url("https://api.example.com/v1", uri, [])


@pytest.mark.parametrize(
    "base_url",
    [
        "https://127.0.0.1:{port}",
        "https://[::1]:{port}",
        "https://10.0.0.1:{port}",
        "https://172.16.0.1:{port}",
        "https://192.168.1.1:{port}",
        "https://169.254.169.254:{port}",
        "https://[::ffff:127.0.0.1]:{port}",
        "https://localhost:{port}",
    ],
)
def test_ssrf_refusals_with_the_loopback_allowlist_off(
    settings, tls_httpserver, tls_ca_bundle, base_url
):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    settings.OUTBOUND_CA_BUNDLE = tls_ca_bundle
    cf = _cf(ApiKeyConnectionFactory(base_url=base_url.format(port=tls_httpserver.port)))
    result = cloud_function_execute(cloud_function=cf, context=CONTEXT)
    assert result.error_stage in ("ssrf", "connect"), result.error_message
    assert not tls_httpserver.log


def test_secrets_echoed_back_are_masked_in_result_and_stored_run(api, designer):
    from orchestration.processes.services import step_run_record

    connection, server = api
    connection.api_key_location = "query"
    connection.api_key_name = "key"
    connection.save()

    def echo(request: Request) -> Response:
        body = {"you_sent": request.args.get("key"), "url": request.url}
        return Response(
            json.dumps(body),
            content_type="application/json",
            headers={"X-Echo": request.args.get("key", "")},
        )

    server.expect_request("/api/v1/charges").respond_with_handler(echo)
    cf = _cf(connection, headers=[{"key": '"X-Trace"', "value": '"t-1"'}])
    result = cloud_function_execute(cloud_function=cf, context=CONTEXT)
    run = step_run_record(step=cf.step, actor=designer, result=result, is_test=True)
    everything = json.dumps(
        [result.payload, result.request, result.error_message, run.request, run.captured]
    )
    assert MARKERS["api_key_value"] not in everything
    assert result.payload["body"]["you_sent"] == MASK
    assert result.payload["headers"]["x-echo"] == MASK


def test_cel_errors_name_the_field_and_keep_secrets_out(api):
    connection, _ = api
    cf = _cf(
        connection, headers=[{"key": '"X-A"', "value": 'events["customer.found"].body.missing'}]
    )
    context = {**CONTEXT, "trigger": {"token": "SECRET-MARKER-cel-91c2"}}
    result = cloud_function_execute(cloud_function=cf, context=context)
    assert result.error_stage == "cel"
    assert "Header 1 value" in result.error_message and "missing" in result.error_message
    assert "SECRET-MARKER" not in result.error_message


def test_test_button_runs_and_shows_the_captured_tree(api, designer_client):
    connection, server = api
    server.expect_request("/api/v1/charges").respond_with_json(
        {"id": "ch_7", "items": [{"sku": "a"}]}
    )
    cf = _cf(connection, completion_event=None)
    cf.completion_event = EventFactory(process=cf.step.process, name="charge.created")
    cf.save()
    step = cf.step
    from tests.cloudfunctions.step.test_views import _post

    data = _post(
        step,
        connection,
        method="GET",
        body="",
        completion_event_choice=str(cf.completion_event_id),
        new_event_name="",
        _action="test",
    )
    data.update({"query-TOTAL_FORMS": "0", "headers-TOTAL_FORMS": "0"})
    response = designer_client.post(
        f"/processes/{step.process_id}/steps/{step.pk}/", data, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Succeeded" in html
    assert "events[&quot;charge.created&quot;].body.id" in html and "ch_7" in html
    assert "events[&quot;charge.created&quot;].body.items[0].sku" in html
    assert MARKERS["api_key_value"] not in html
    assert step.runs.get().captured["body"]["id"] == "ch_7"


def test_a_post_test_asks_for_confirmation_naming_the_host(api, designer_client):
    connection, server = api
    cf = _cf(connection, method="POST", body="{}")
    step = cf.step
    from tests.cloudfunctions.step.test_views import _post

    data = _post(step, connection, new_event_name="x.done", _action="test")
    response = designer_client.post(
        f"/processes/{step.process_id}/steps/{step.pk}/", data, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "This sends a real POST request to 127.0.0.1:" in html
    assert not server.log and not step.runs.exists()


def test_a_header_value_http_cannot_carry_is_a_failed_result_not_a_crash(api):
    connection, server = api
    cf = _cf(connection, headers=[{"key": '"X-Name"', "value": '"Zoë ✓"'}])
    result = cloud_function_execute(cloud_function=cf, context=CONTEXT)
    assert result.error_stage == "request"
    assert result.error_message == errors.OUTBOUND_HEADER_UNSENDABLE.format(
        host=f"127.0.0.1:{server.port}"
    )
    assert not server.log


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {
                "method": "POST",
                "body_mode": "cel",
                "body": '{"a": double("NaN"), "b": 1e308 * 10.0}',
            },
            BODY_NOT_FINITE,
        ),
        (
            {"headers": [{"key": '"Transfer-" + "Encoding"', "value": '"chunked"'}]},
            "Header 1 key: " + HEADER_SET_WHEN_SENT.format(name="Transfer-Encoding"),
        ),
        (
            {"headers": [{"key": '"content-length"', "value": '"0"'}]},
            "Header 1 key: " + HEADER_SET_WHEN_SENT.format(name="content-length"),
        ),
    ],
)
def test_requests_http_or_json_cannot_express_are_never_sent(api, overrides, message):
    connection, server = api
    cf = _cf(connection, **overrides)
    result = cloud_function_execute(cloud_function=cf, context=CONTEXT)
    assert (result.ok, result.error_stage, result.error_message) == (False, "cel", message)
    assert not server.log


def test_a_framing_header_makes_the_step_incomplete(api):
    connection, _ = api
    cf = _cf(connection, headers=[{"key": '"Host"', "value": '"elsewhere.example"'}])
    problems = [(p.field, p.message) for p in iter_problems(cf, known_events=None)]
    assert ("Header 1 key", HEADER_SET_WHEN_SENT.format(name="Host")) in problems


def test_a_deeply_nested_json_response_is_captured_as_text(api):
    connection, server = api
    bomb = "[" * 100_000 + "]" * 100_000
    server.expect_request("/api/v1/charges").respond_with_data(
        bomb, content_type="application/json"
    )
    result = cloud_function_execute(cloud_function=_cf(connection), context=CONTEXT)
    assert result.ok and result.payload["body"] == bomb


def test_test_runs_are_limited_per_user(api, designer_client, settings):
    from tests.cloudfunctions.step.test_views import _post

    settings.TEST_RUN_LIMIT = 2
    connection, server = api
    server.expect_request("/api/v1/charges").respond_with_json({"ok": True})
    cf = _cf(connection)
    step = cf.step
    url = f"/processes/{step.process_id}/steps/{step.pk}/"
    statuses = []
    for _ in range(3):
        step.refresh_from_db()
        data = _post(
            step,
            connection,
            method="GET",
            body="",
            new_event_name=f"e{len(statuses)}",
            _action="test",
        )
        data.update({"query-TOTAL_FORMS": "0", "headers-TOTAL_FORMS": "0"})
        response = designer_client.post(url, data, HTTP_HX_REQUEST="true")
        statuses.append(response.status_code)
    # htmx swaps no 4xx: the refusal comes as a result to show, with the saved revision.
    assert statuses == [200, 200, 200]
    html = response.content.decode()
    step.refresh_from_db()
    assert "Too many Test runs" in html and f'value="{step.revision}"' in html
    assert len(server.log) == 2
    without_htmx = designer_client.post(url, {**data, "revision": step.revision})
    assert without_htmx.status_code == 429


def test_binary_answers_with_nul_bytes_are_stored_safely(api, designer):
    from orchestration.processes.services import step_run_record

    connection, server = api
    server.expect_request("/api/v1/charges").respond_with_data(
        b"\x89PNG\x00\x00IHDR", content_type="image/png"
    )
    cf = _cf(connection)
    result = cloud_function_execute(cloud_function=cf, context=CONTEXT)
    run = step_run_record(step=cf.step, actor=designer, result=result, is_test=True)
    run.refresh_from_db()
    assert "\x00" not in run.captured["body"] and run.captured["body"].startswith("\ufffdPNG")


def test_a_token_endpoint_with_a_nonsense_expiry_fails_cleanly(outbound_tls, tls_httpserver):
    from tests.factories import OAuthConnectionFactory

    base = tls_httpserver.url_for("/").rstrip("/")
    tls_httpserver.expect_request("/token").respond_with_json(
        {"access_token": "t", "token_type": "Bearer", "expires_in": "soon"}
    )
    connection = OAuthConnectionFactory(base_url=base, token_url=f"{base}/token")
    result = cloud_function_execute(cloud_function=_cf(connection), context=CONTEXT)
    assert result.error_stage == "auth" and "token" in result.error_message


def _test_with_refused_attempts(api, designer_client, **headers):
    """Press Test with Attempts out of range; return the step and the response."""
    connection, server = api
    server.expect_request("/api/v1/charges").respond_with_json({"id": "ch_7"})
    step = _cf(connection).step
    from tests.cloudfunctions.step.test_views import _post

    data = _post(step, connection, method="GET", body="", new_event_name="x.done", _action="test")
    data.update({"query-TOTAL_FORMS": "0", "headers-TOTAL_FORMS": "0", "max_attempts": "99"})
    url = f"/processes/{step.process_id}/steps/{step.pk}/"
    return step, designer_client.post(url, data, **headers)


def test_test_without_htmx_keeps_the_fields_that_failed_and_their_errors(api, designer_client):
    step, response = _test_with_refused_attempts(api, designer_client)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="99"' in html and "less than or equal to 10" in html
    assert "some fields need attention" in html
    assert "Succeeded" in html  # the rest was saved and tested
    step.refresh_from_db()
    assert step.max_attempts != 99


def test_test_with_htmx_says_which_refused_fields_kept_their_saved_value(api, designer_client):
    _, response = _test_with_refused_attempts(api, designer_client, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "Tested with the saved Attempts: the value typed there was refused." in html
    assert "Succeeded" in html


def test_request_as_sent_shows_what_the_connection_added_masked(
    outbound_tls, tls_httpserver, designer
):
    """The API key's header, the OAuth bearer and the SigV4 signature are listed, masked,
    with the connection named; the curl line carries the same."""
    from cloudfunctions.step.curl import to_curl
    from tests.factories import (
        MARKERS,
        AmazonConnectionFactory,
        OAuthConnectionFactory,
    )

    base = tls_httpserver.url_for("/").rstrip("/")
    tls_httpserver.expect_request("/oauth2/token").respond_with_json(
        {"access_token": "TOKEN-MARKER-shown", "token_type": "Bearer", "expires_in": 300}
    )
    tls_httpserver.expect_request("/v1/charges").respond_with_json({"ok": True})
    outbound_tls.AMAZON_CONNECT_ENDPOINT_OVERRIDE = base
    key = ApiKeyConnectionFactory(base_url=base, name="Payments")
    oauth = OAuthConnectionFactory(base_url=base, token_url=f"{base}/oauth2/token")
    aws = AmazonConnectionFactory()

    shown = {}
    for connection in (key, oauth, aws):
        result = cloud_function_execute(cloud_function=_cf(connection), context=CONTEXT)
        assert result.ok, result.error_message
        shown[connection.pk] = result.request

    assert shown[key.pk]["connection"] == "Payments"
    assert shown[key.pk]["headers"][key.api_key_name] == MASK
    assert shown[oauth.pk]["headers"]["Authorization"] == f"Bearer {MASK}"
    signed = shown[aws.pk]["headers"]["Authorization"]
    assert signed.startswith("AWS4-HMAC-SHA256 Credential=AKIA…/…")
    assert signed.endswith(f"Signature={MASK}") and "X-Amz-Date" in shown[aws.pk]["headers"]
    curl = to_curl(shown[oauth.pk])
    assert f"Authorization: Bearer {MASK}" in curl and "TOKEN-MARKER" not in curl
    for request in shown.values():
        text = str(request)
        for secret in (*MARKERS.values(), "TOKEN-MARKER-shown", "IOSFODNN7EXAMPLE"):
            assert secret not in text
