"""The demo API's WSGI application: httpbin, with a few routes of ours in front of it.

Ours, all echoing through httpbin's ``/anything`` once they let a request pass:
- ``POST /oauth/token``: an OAuth 2.0 client-credentials token endpoint (authlib's
  authorization server) issuing short-lived bearer tokens with scopes.
- ``/secure/...`` (scope notifications:write) and httpbin's ``/bearer``: only with a live
  token from that endpoint.
- ``/shop/...``: only with the demo API key.
- ``/flaky/...``: 503 to the first attempt, 200 to its retry (same Idempotency-Key).
- ``/throttled/...``: 429 with ``Retry-After: 1`` to the first attempt, 200 to its retry.
Everything else is httpbin's (``/anything``, ``/status/<code>``, ``/delay/<s>``, ``/json``).
"""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import Flask, Response, request
from httpbin import app as httpbin_app

from cloudfunctions.demo_api import (
    DEMO_API_KEY,
    DEMO_API_KEY_NAME,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_SCOPES,
    DEMO_TOKEN_SECONDS,
)

RETRY_AFTER_SECONDS = 1
# What /secure/... asks of a token (the demo connection asks for every demo scope).
SECURE_SCOPE = "notifications:write"
# Attempts remembered by the stateful routes; the oldest are forgotten past this.
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class DemoClient(ClientMixin):
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        asked = scope_to_list(scope) or list(self.scopes)
        return " ".join(s for s in asked if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


@dataclass
class DemoToken(TokenMixin):
    access_token: str
    scope: str
    issued_at: float = field(default_factory=time.time)
    expires_in: int = DEMO_TOKEN_SECONDS

    def check_client(self, client) -> bool:
        return client.client_id == DEMO_CLIENT_ID

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False


class _Tokens(BearerTokenValidator):
    """The issued tokens, in memory: the demo API runs as one gunicorn process."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._tokens: dict[str, DemoToken] = {}

    def save(self, token: dict, _request) -> None:
        with self._lock:
            self._tokens = {k: t for k, t in self._tokens.items() if not t.is_expired()}
            self._tokens[token["access_token"]] = DemoToken(
                access_token=token["access_token"],
                scope=token.get("scope", ""),
                expires_in=token.get("expires_in", DEMO_TOKEN_SECONDS),
            )

    def authenticate_token(self, token_string: str) -> DemoToken | None:
        with self._lock:
            return self._tokens.get(token_string)


class _FirstAttemptFails:
    """Answer a request's first attempt with an error and its retry normally.

    Attempts are told apart by the Idempotency-Key header a deployed run sends with every
    attempt of a step; without one, calls to the same path alternate.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._failed: dict[str, None] = {}

    def first_attempt(self) -> bool:
        key = request.headers.get("Idempotency-Key") or f"path:{request.path}"
        with self._lock:
            if key in self._failed:
                del self._failed[key]
                return False
            if len(self._failed) >= _MAX_REMEMBERED:
                del self._failed[next(iter(self._failed))]
            self._failed[key] = None
            return True


def create_app() -> Flask:
    """Return our routes as a Flask app; anything they do not answer goes to httpbin."""
    app = Flask(__name__)
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"client_credentials": DEMO_TOKEN_SECONDS}
    app.config["OAUTH2_SCOPES_SUPPORTED"] = list(DEMO_SCOPES)
    client = DemoClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_SCOPES)
    tokens = _Tokens()
    server = AuthorizationServer(
        app,
        query_client=lambda client_id: client if client_id == client.client_id else None,
        save_token=tokens.save,
    )
    server.register_grant(grants.ClientCredentialsGrant)
    protect = ResourceProtector()
    protect.register_token_validator(tokens)
    flaky = _FirstAttemptFails()
    throttled = _FirstAttemptFails()

    @app.post("/oauth/token")
    def token():
        return server.create_token_response()

    @app.route("/bearer", methods=["GET"])
    @protect()
    def bearer():
        return httpbin(app_path="/bearer")

    @app.route("/secure/<path:rest>", methods=_METHODS)
    @protect(SECURE_SCOPE)
    def secure(rest: str):
        return httpbin()

    @app.route("/shop/<path:rest>", methods=_METHODS)
    def shop(rest: str):
        if request.headers.get(DEMO_API_KEY_NAME) != DEMO_API_KEY:
            return _json({"error": "invalid_api_key"}, 401)
        return httpbin()

    @app.route("/flaky/<path:rest>", methods=_METHODS)
    def flaky_route(rest: str):
        if flaky.first_attempt():
            return _json({"error": "temporarily_unavailable"}, 503)
        return httpbin()

    @app.route("/throttled/<path:rest>", methods=_METHODS)
    def throttled_route(rest: str):
        if throttled.first_attempt():
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            return _json({"error": "rate_limited"}, 429, headers)
        return httpbin()

    return app


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _json(data: dict, status: int, headers: dict[str, str] | None = None):
    return json.dumps(data), status, {"Content-Type": "application/json", **(headers or {})}


def httpbin(app_path: str | None = None) -> Response:
    """Answer through httpbin: ``/anything/<our path>`` echoes what was sent, as it arrived."""
    body = request.get_data()  # read again from here, whoever read it before
    environ = {
        **request.environ,
        "PATH_INFO": app_path or f"/anything{request.path}",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    return Response.from_app(httpbin_app.wsgi_app, environ)


def _ours(app: Flask):
    """Route our paths to ``app`` and every other to httpbin."""
    prefixes = ("/oauth/", "/secure/", "/shop/", "/flaky/", "/throttled/")

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/bearer" or path.startswith(prefixes):
            return app.wsgi_app(environ, start_response)
        return httpbin_app.wsgi_app(environ, start_response)

    return application


application = _ours(create_app())
