"""Real TLS servers on loopback, trusted through a throwaway CA.

Import with ``from tests.tls import *``.

Fixtures:
- ``tls_ca``: the trustme CA (session).
- ``tls_ca_bundle``: path of the CA's PEM file (session).
- ``tls_server_context``: server SSLContext with a certificate for localhost and 127.0.0.1.
- ``tls_httpserver_session``: the session-wide server behind ``tls_httpserver``.
- ``tls_httpserver``: a pytest-httpserver ``HTTPServer`` serving https on 127.0.0.1, cleared
  after each test.
- ``outbound_tls``: settings that let the transport reach it (loopback allowed, CA trusted).
- ``oauth_token_server``: an RFC 6749 token endpoint and a protected resource on that server.
- ``tls_socket_server``: start raw TLS socket servers that run a handler on one connection.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from urllib.parse import unquote_plus

import pytest
import trustme
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

__all__ = [
    "OAuthTokenServer",
    "oauth_token_server",
    "outbound_tls",
    "tls_ca",
    "tls_ca_bundle",
    "tls_httpserver",
    "tls_httpserver_session",
    "tls_server_context",
    "tls_socket_server",
]


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_ca_bundle(tls_ca, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tls_server_context(tls_ca) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def tls_httpserver_session(tls_server_context) -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=tls_server_context, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def tls_httpserver(tls_httpserver_session) -> Iterator[HTTPServer]:
    """Return the https server; ``url_for()`` gives https://127.0.0.1:<port>/..."""
    tls_httpserver_session.clear()
    yield tls_httpserver_session
    tls_httpserver_session.clear()


@pytest.fixture
def outbound_tls(settings, tls_ca_bundle):
    """Let the transport reach loopback servers and trust the test CA."""
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    settings.OUTBOUND_CA_BUNDLE = tls_ca_bundle
    return settings


class OAuthTokenServer:
    """A token endpoint (client_credentials and refresh_token grants) and a protected resource.

    ``token_url`` takes both grants, ``refresh_url`` only refresh_token; ``resource_url``
    answers 200 to a live bearer token and 401 otherwise. ``grants`` logs each token request
    as (path, grant_type, client authentication method).
    """

    client_id = "client-7"
    client_secret = "SECRET-MARKER-client-2b9d"

    def __init__(self, server: HTTPServer):
        self.token_url = server.url_for("/oauth/token")
        self.refresh_url = server.url_for("/oauth/refresh")
        self.resource_url = server.url_for("/api/resource")
        self.host = f"127.0.0.1:{server.port}"
        self.expires_in: int | None = 3600
        self.issue_refresh_token = False
        self.grants: list[tuple[str, str, str]] = []
        self.scopes: list[str | None] = []
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        server.expect_request("/oauth/token", method="POST").respond_with_handler(self._token)
        server.expect_request("/oauth/refresh", method="POST").respond_with_handler(self._refresh)
        server.expect_request("/api/resource").respond_with_handler(self._resource)

    @property
    def token_requests(self) -> int:
        return len(self.grants)

    def revoke_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def _token(self, request: Request) -> Response:
        return self._grant(request, allowed=("client_credentials", "refresh_token"))

    def _refresh(self, request: Request) -> Response:
        return self._grant(request, allowed=("refresh_token",))

    def _grant(self, request: Request, allowed: tuple[str, ...]) -> Response:
        method = self._client_auth(request)
        grant_type = request.form.get("grant_type", "")
        with self._lock:
            self.grants.append((request.path, grant_type, method or "none"))
            self.scopes.append(request.form.get("scope"))
            if method is None:
                return _json({"error": "invalid_client"}, 401, {"WWW-Authenticate": "Basic"})
            if grant_type not in allowed:
                return _json({"error": "unsupported_grant_type"}, 400)
            if grant_type == "refresh_token":
                refresh_token = request.form.get("refresh_token", "")
                if refresh_token not in self.refresh_tokens:
                    return _json({"error": "invalid_grant"}, 400)
                self.refresh_tokens.discard(refresh_token)
            return _json(self._issue(), 200, {"Cache-Control": "no-store"})

    def _issue(self) -> dict:
        access_token = f"access-{next(self._serial)}-{secrets.token_hex(8)}"
        self.access_tokens.add(access_token)
        token = {"access_token": access_token, "token_type": "Bearer"}
        if self.expires_in is not None:
            token["expires_in"] = self.expires_in
        if self.issue_refresh_token:
            token["refresh_token"] = f"refresh-{secrets.token_hex(8)}"
            self.refresh_tokens.add(token["refresh_token"])
        return token

    def _client_auth(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
            pair, method = (unquote_plus(client_id), unquote_plus(client_secret)), "basic"
        else:
            pair = (request.form.get("client_id"), request.form.get("client_secret"))
            method = "post"
        return method if pair == (self.client_id, self.client_secret) else None

    def _resource(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            live = token in self.access_tokens
        if not live:
            return _json({"error": "invalid_token"}, 401, {"WWW-Authenticate": "Bearer"})
        return _json({"ok": True}, 200)


def _json(data: dict, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status, headers, content_type="application/json")


@pytest.fixture
def oauth_token_server(tls_httpserver) -> OAuthTokenServer:
    return OAuthTokenServer(tls_httpserver)


@pytest.fixture
def tls_socket_server(tls_server_context) -> Iterator[Callable[..., str]]:
    """Return ``start(handler, handshake=True) -> "127.0.0.1:<port>"``.

    The server accepts one connection, completes the TLS handshake unless told not to, and
    calls ``handler(sock)``; socket errors in the handler (client gone) are ignored.
    """
    started: list[tuple[socket.socket, threading.Thread]] = []

    def start(handler: Callable[[socket.socket], None], *, handshake: bool = True) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(10)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                if handshake:
                    conn = tls_server_context.wrap_socket(conn, server_side=True)
                handler(conn)
            except OSError:
                pass
            finally:
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started.append((listener, thread))
        return f"127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for listener, thread in started:
        listener.close()
        thread.join(timeout=10)
