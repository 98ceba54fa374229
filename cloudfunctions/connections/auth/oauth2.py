"""OAuth 2.0 client credentials (RFC 6749 section 4.4): token requests built by authlib and
sent by the one outbound transport.

authlib's OAuth2Session is a requests session; only its request-building parts are used here
(the form body and the client authentication), so the token request is an OutboundRequest
like every other, under the same rules, and no requests session exists to be guarded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.client import DEFAULT_HEADERS
from authlib.oauth2.rfc6749 import OAuth2Token
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from django.conf import settings

from cloudfunctions.connections.auth.base import AuthError
from cloudfunctions.http import errors, transport
from cloudfunctions.http.transport import (
    OutboundRequest,
    OutboundResponse,
    host_of,
    retry_after_seconds,
)
from orchestration.jsontext import JSONTextError, parse_json
from orchestration.validators import is_ascii_digits

# Only well-known error codes are echoed: the rest of the answer is free text a server may
# fill with whatever it received, credentials included.
_KNOWN_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "server_error",
        "temporarily_unavailable",
    }
)
# Codes that say "try again later" (RFC 6749 section 4.1.2.1), whatever the status they come
# with; every other error response is a definitive refusal (section 5.2) that a retry would
# only repeat, and repeated bad client credentials can get the client locked out.
_TRANSIENT_ERRORS = frozenset({"server_error", "temporarily_unavailable"})
# How often a caller checks whether the one fetching a token (in another process) is done.
POLL_SECONDS = 0.05


class TokenEndpointError(AuthError):
    """The token endpoint answered without a usable token.

    ``retryable`` is true only for a transient answer (HTTP 429 or 5xx, or a "try again
    later" error code); ``retry_after`` is its Retry-After in seconds, when it gave one.
    An endpoint that could not be reached at all raises the transport's ``OutboundError``.
    """

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__("token", message)
        self.retryable = retryable
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"TokenEndpointError({self.message!r}, retryable={self.retryable!r})"


@dataclass(frozen=True)
class CachedToken:
    token: dict[str, Any] | None
    version: int  # bumped by every stored token: what compare-and-set compares


class TokenStore(Protocol):
    """Where tokens are cached; no method may hold a database lock after it returns."""

    def load(self) -> CachedToken:
        """Return the cached token and its version."""

    def claim(self, version: int, seconds: float) -> bool:
        """Take the right to fetch the successor of ``version`` for ``seconds``, unless the
        version moved on or another caller holds it; never wait."""

    def save(self, token: dict[str, Any], version: int) -> bool:
        """Store ``token`` as the successor of ``version`` and end any claim; False when
        another token was stored first."""

    def release(self, version: int) -> None:
        """End a claim without storing a token."""

    def lock(self) -> AbstractContextManager[object]:
        """Return a lock the callers of this process queue on (never a database lock)."""


class OAuth2ClientCredentials:
    """Bearer tokens from the client credentials grant, cached in a TokenStore."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        token_url: str,
        store: TokenStore,
        scopes: Sequence[str] = (),
        refresh_url: str | None = None,
        leeway: int = 60,
    ):
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self.refresh_url = refresh_url or token_url
        self.scopes = list(scopes)
        self.store = store
        self.leeway = leeway
        self._sent_access_token: str | None = None

    def __repr__(self) -> str:
        return f"<OAuth2ClientCredentials {self.client_id!r} at {host_of(self.token_url)}>"

    def apply(self, request: OutboundRequest) -> OutboundRequest:
        token = self._usable_token()
        self._sent_access_token = token["access_token"]
        return request.with_header("Authorization", f"Bearer {token['access_token']}")

    def renew(self) -> bool:
        """Replace the token the API just refused, unless another caller already did."""
        sent = self._sent_access_token
        self._replace(lambda token: not self._is_usable(token) or token["access_token"] == sent)
        return True

    def fetch_token_for_test(self) -> dict[str, Any]:
        """Fetch and cache a new token; return what it grants, without the token itself."""
        with self.store.lock():
            version = self.store.load().version
            token = self._fetch()
            # Lost to a token stored meanwhile: that one is as fresh, and stays.
            self.store.save(token, version)
        return {key: token[key] for key in ("token_type", "expires_in", "scope") if key in token}

    def secrets(self) -> list[str]:
        token = self.store.load().token or {}
        # The token actually sent may differ from the stored one if another caller renewed.
        found = [
            self._client_secret,
            self._sent_access_token,
            token.get("access_token"),
            token.get("refresh_token"),
        ]
        return [value for value in found if isinstance(value, str) and value]

    def _usable_token(self) -> dict[str, Any]:
        token = self.store.load().token
        if self._is_usable(token):
            return token
        return self._replace(lambda token: not self._is_usable(token))

    def _replace(self, stale: Callable[[dict[str, Any] | None], bool]) -> dict[str, Any]:
        """Return a cached token that is not stale, or fetch one: one fetch among all callers,
        with no database lock or transaction held while it is on the network."""
        # Long enough for a refresh and a fresh grant, each within the outbound deadline.
        lease = 2 * settings.OUTBOUND_DEADLINE_SECONDS + 5
        with self.store.lock():
            while True:
                cached = self.store.load()
                if not stale(cached.token):
                    return cached.token
                if self.store.claim(cached.version, lease):
                    break
                time.sleep(POLL_SECONDS)  # another process is fetching; its lease ends it
            try:
                token = self._renewed(cached.token)
            except BaseException:
                self.store.release(cached.version)
                raise
            # Lost only if our lease ran out and another caller stored a token: ours is valid.
            self.store.save(token, cached.version)
        return token

    def _is_usable(self, token: dict[str, Any] | None) -> bool:
        if not token or not token.get("access_token"):
            return False
        return not OAuth2Token.from_dict(token).is_expired(leeway=self.leeway)

    def _renewed(self, token: dict[str, Any] | None) -> dict[str, Any]:
        if token and token.get("refresh_token"):
            try:
                return self._refresh(token["refresh_token"])
            except AuthError:
                pass  # a refused refresh token (invalid_grant): start over with the client's own
        return self._fetch()

    def _fetch(self) -> dict[str, Any]:
        return self._token_request(self.token_url, "client_credentials")

    def _refresh(self, refresh_token: str) -> dict[str, Any]:
        token = self._token_request(self.refresh_url, "refresh_token", refresh_token=refresh_token)
        # RFC 6749 section 6: a server may keep the refresh token and not send it again.
        token.setdefault("refresh_token", refresh_token)
        return token

    def _token_request(self, url: str, grant_type: str, **params: str) -> dict[str, Any]:
        scope = " ".join(self.scopes)
        body = prepare_token_request(
            grant_type, "", **params, **({"scope": scope} if scope else {})
        )
        client = ClientAuth(self.client_id, self._client_secret, "client_secret_basic")
        url, headers, body = client.prepare("POST", url, dict(DEFAULT_HEADERS), body)
        request = OutboundRequest("POST", url, headers=headers, body=body.encode())
        response = transport.send(request, allowed_hosts={host_of(url)})
        data = _check_token_response(response, host_of(url))
        # OAuth2Token turns expires_in into the expires_at the cache is judged by.
        return dict(OAuth2Token.from_dict(data))


def _check_token_response(response: OutboundResponse, host: str) -> dict[str, Any]:
    """Return the token the endpoint answered, or raise TokenEndpointError."""
    status = response.status
    transient = status == 429 or status >= 500
    retry_after = retry_after_seconds(response.headers.get("retry-after")) if transient else None

    def refused(message: str, *, retryable: bool = transient) -> TokenEndpointError:
        return TokenEndpointError(
            message, retryable=retryable, retry_after=retry_after if retryable else None
        )

    if response.truncated:
        raise refused(errors.AUTH_TOKEN_TRUNCATED.format(host=host))
    if 300 <= status < 400:
        raise refused(errors.AUTH_TOKEN_REDIRECT.format(host=host, status=status))
    try:
        data = parse_json(response.body)
    except JSONTextError:
        data = None
    if isinstance(data, dict) and "error" in data:
        code = str(data["error"])
        code = code if code in _KNOWN_ERRORS else "unknown error"
        raise refused(
            errors.AUTH_TOKEN_REJECTED.format(host=host, error=code),
            retryable=transient or code in _TRANSIENT_ERRORS,
        )
    if status >= 400:
        raise refused(errors.AUTH_TOKEN_HTTP_STATUS.format(host=host, status=status))
    if not isinstance(data, dict):
        raise refused(errors.AUTH_TOKEN_NOT_JSON.format(host=host))
    if not isinstance(data.get("access_token"), str) or not data["access_token"]:
        raise refused(errors.AUTH_TOKEN_MISSING.format(host=host))
    # authlib turns these into ints: "soon" or [1] would crash it rather than fail cleanly. An
    # expires_at it cannot read (a date, say) it drops for expires_in, so text may pass.
    expires_at = data.get("expires_at")
    if not _seconds(data.get("expires_in")) or not (
        isinstance(expires_at, str) or _seconds(expires_at)
    ):
        raise refused(errors.AUTH_TOKEN_BAD_EXPIRY.format(host=host))
    return data


def _seconds(value) -> bool:
    """Whether a token's expiry is absent or a number of seconds that fits a timestamp (ten
    digits reach the year 2286)."""
    if value is None:
        return True
    if isinstance(value, str):
        return is_ascii_digits(value) and len(value) <= 10
    # JSON numbers are finite here: parse_json refuses the others.
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 10**10
