"""Faulty upstreams: each gives a clear failed (or safely capped) result, in time, no secret."""

from __future__ import annotations

import datetime
import gzip
import json
import socket
import ssl
import struct
import threading
import time

import pytest
import trustme
from werkzeug import Response

from cloudfunctions.http import errors
from cloudfunctions.models import Connection
from cloudfunctions.step.execution import cloud_function_execute
from tests.clock import GENEROUS_SECONDS
from tests.factories import (
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    OAuthConnectionFactory,
)
from tests.tls import OAuthTokenServer

pytestmark = pytest.mark.django_db

DEADLINE = 1.0
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def _execute(connection, method="GET"):
    cf = CloudFunctionFactory(connection=connection, method=method, uri='"/v1/items"', body="")
    started = time.monotonic()
    result = cloud_function_execute(cloud_function=cf, context={})
    return result, time.monotonic() - started


@pytest.fixture
def short_deadline(outbound_tls):
    outbound_tls.OUTBOUND_DEADLINE_SECONDS = DEADLINE
    outbound_tls.OUTBOUND_CONNECT_TIMEOUT_SECONDS = DEADLINE
    return outbound_tls


def _reset(sock):
    sock.recv(65536)
    # SO_LINGER 0: close() sends RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _stall_mid_body(sock):
    sock.recv(65536)
    sock.sendall(HEADERS + b"Content-Length: 100\r\n\r\n" + b'{"partial": ')
    time.sleep(DEADLINE + 1)


def _drip(sock):
    sock.recv(65536)
    sock.sendall(HEADERS + b"Content-Length: 1000\r\n\r\n")
    for _ in range(int(DEADLINE) + 3):
        sock.sendall(b" ")
        time.sleep(1)


def _drip_headers(sock):
    sock.recv(65536)
    for byte in HEADERS:
        sock.sendall(bytes([byte]))
        time.sleep(1)


def _endless(sock):
    sock.recv(65536)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
    deadline = time.monotonic() + DEADLINE + 2
    while time.monotonic() < deadline:
        sock.sendall(b"x" * 65536)


def _garbage(sock):
    sock.recv(65536)
    sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")


def _close_before_answer(sock):
    sock.recv(65536)


# (server behaviour, expected stage, or "capped" for a result kept but truncated)
SOCKET_FAULTS = [
    (_reset, "protocol"),
    (_stall_mid_body, "timeout"),
    (_drip, "timeout"),
    (_drip_headers, "timeout"),
    (_endless, "capped"),
    (_garbage, "protocol"),
    (_close_before_answer, "protocol"),
]


@pytest.mark.parametrize(
    "behaviour, stage", SOCKET_FAULTS, ids=[f.__name__ for f, _ in SOCKET_FAULTS]
)
def test_misbehaving_servers(short_deadline, tls_socket_server, scan, behaviour, stage):
    short_deadline.OUTBOUND_MAX_RESPONSE_BYTES = 100_000
    host = tls_socket_server(behaviour)
    result, seconds = _execute(ApiKeyConnectionFactory(base_url=f"https://{host}"))
    assert seconds < GENEROUS_SECONDS
    if stage == "capped":
        assert result.payload["truncated"] is True
        assert len(result.payload["body"]) == 100_000
    else:
        assert not result.ok and result.error_stage == stage, result.error_message
        assert result.error_message.startswith(host)
    assert scan("result", [result.payload, result.request, result.error_message]) == 0


def test_gzip_bomb_is_capped_on_decoded_bytes(short_deadline, tls_httpserver, scan):
    short_deadline.OUTBOUND_MAX_RESPONSE_BYTES = 1024 * 1024
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    tls_httpserver.expect_request("/v1/items").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}, content_type="text/plain"
    )
    result, seconds = _execute(ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/")[:-1]))
    assert result.payload["truncated"] is True
    assert len(result.payload["body"]) == 1024 * 1024
    assert seconds < GENEROUS_SECONDS
    assert scan("result", [result.request, result.error_message]) == 0


def test_malformed_json_is_kept_as_text(short_deadline, tls_httpserver, scan):
    tls_httpserver.expect_request("/v1/items").respond_with_data(
        '{"id": 1,,', content_type="application/json"
    )
    result, _ = _execute(ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/")[:-1]))
    assert result.ok and result.payload["body"] == '{"id": 1,,'
    assert scan("result", [result.payload, result.request]) == 0


def _serve_once(context: ssl.SSLContext) -> tuple[str, list]:
    """A TLS server with its own certificate; returns its host and the requests it read."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    received: list[bytes] = []

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                received.append(tls.recv(65536))
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (OSError, ssl.SSLError):
            pass
        finally:
            listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"127.0.0.1:{listener.getsockname()[1]}", received


def _context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    return context


def _untrusted(tls_ca):
    return trustme.CA().issue_cert("127.0.0.1", "localhost")


def _expired(tls_ca):
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    return tls_ca.issue_cert(
        "127.0.0.1", not_before=past - datetime.timedelta(days=30), not_after=past
    )


def _not_yet_valid(tls_ca):
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    return tls_ca.issue_cert(
        "127.0.0.1", not_before=future, not_after=future + datetime.timedelta(days=30)
    )


def _wrong_host(tls_ca):
    return tls_ca.issue_cert("api.example.com")


@pytest.mark.parametrize("make_cert", [_untrusted, _expired, _not_yet_valid, _wrong_host])
def test_bad_certificates_are_refused(short_deadline, tls_ca, scan, make_cert):
    host, received = _serve_once(_context(make_cert(tls_ca)))
    result, seconds = _execute(ApiKeyConnectionFactory(base_url=f"https://{host}"))
    assert result.error_stage == "tls", result.error_message
    assert result.error_message == errors.OUTBOUND_TLS_FAILED.format(host=host)
    assert seconds < GENEROUS_SECONDS
    time.sleep(0.05)
    assert not any(received)  # the API key never crossed the untrusted connection
    assert scan("result", [result.request, result.error_message]) == 0


def _oauth(server: OAuthTokenServer, tls_httpserver, *, token_path="/oauth/token", **kwargs):
    fields = {
        "base_url": tls_httpserver.url_for("/api").rstrip("/"),
        "token_url": tls_httpserver.url_for(token_path),
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }
    return OAuthConnectionFactory(**{**fields, **kwargs})


def _invalid_client(tls_httpserver, server):
    return _oauth(server, tls_httpserver, client_id="someone-else"), "invalid_client"


def _html_502(tls_httpserver, server):
    tls_httpserver.expect_request("/oauth/bad").respond_with_data(
        "<html><body>Bad gateway " + server.client_secret + "</body></html>",
        status=502,
        content_type="text/html",
    )
    return _oauth(server, tls_httpserver, token_path="/oauth/bad"), "HTTP 502"


def _redirect(tls_httpserver, server):
    tls_httpserver.expect_request("/oauth/moved").respond_with_data(
        "", status=307, headers={"Location": "https://169.254.169.254/token"}
    )
    return _oauth(server, tls_httpserver, token_path="/oauth/moved"), "redirect"


def _echoing_error(tls_httpserver, server):
    tls_httpserver.expect_request("/oauth/echo").respond_with_handler(
        lambda request: Response(
            json.dumps({"error": "invalid_request", "error_description": dict(request.form)}),
            400,
            content_type="application/json",
        )
    )
    return _oauth(server, tls_httpserver, token_path="/oauth/echo"), "invalid_request"


@pytest.mark.parametrize("make", [_invalid_client, _html_502, _redirect, _echoing_error])
def test_token_endpoint_failures(short_deadline, tls_httpserver, oauth_token_server, scan, make):
    connection, expected = make(tls_httpserver, oauth_token_server)
    result, seconds = _execute(connection)
    assert result.error_stage == "auth", result.error_message
    assert expected in result.error_message
    assert seconds < GENEROUS_SECONDS
    assert not [r for r, _ in tls_httpserver.log if r.path.startswith("/api/")]
    assert Connection.objects.get(pk=connection.pk).oauth_token is None
    everything = [result.payload, result.request, result.error_message]
    assert scan("result", everything) == 0
