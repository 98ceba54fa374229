"""Test connection: one real, harmless call that proves the settings and credentials work."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from cloudfunctions import amazon_connect
from cloudfunctions.connections import services
from cloudfunctions.connections.auth import AuthError
from cloudfunctions.connections.providers import auth_for
from cloudfunctions.http import transport
from cloudfunctions.http.redaction import Redactor
from cloudfunctions.http.request import OutboundRequest
from cloudfunctions.models import Connection
from cloudfunctions.secrets import SecretDecryptionError
from orchestration.failures import log_unexpected

logger = logging.getLogger(__name__)

TOKEN_RECEIVED = "Token received from {host} ({details})."
REACHED = "{host} answered HTTP {status}."
CREDENTIALS_REFUSED = "{host} refused the credentials (HTTP {status})."
TEST_CRASHED = "The test failed unexpectedly; the details are in the server log."
# What a grant's fields look like (RFC 6749 sections 5.1 and 3.3): a token type is one word,
# a scope is scope tokens separated by spaces; anything else is not shown.
GRANT_SHAPES = {
    "token_type": re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}"),
    "expires_in": re.compile(r"[0-9]{1,10}"),
    "scope": re.compile(
        r"[\x21\x23-\x5b\x5d-\x7e]{1,100}(?: [\x21\x23-\x5b\x5d-\x7e]{1,100}){0,19}"
    ),
}


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    summary: str
    duration_ms: float
    status: int | None = None


def _list_instances_path() -> str:
    """Where ListInstances lives, from the Amazon Connect service model boto3 ships."""
    return amazon_connect.service_model().operation_model("ListInstances").http["requestUri"]


def _grant_details(grant: dict, redact: Redactor) -> str:
    """Describe a grant by the fields that have their expected shape, secrets masked.

    A token endpoint may echo what it received in any field (the Basic header with the
    client secret in token_type, the access token in scope): the rest is left out.
    """
    shown = []
    for key, shape in GRANT_SHAPES.items():
        value = grant.get(key)
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if text and shape.fullmatch(text):
            # Each word on its own too: a short token is masked only where it is whole.
            words = redact.text(text).split(" ")
            shown.append(f"{key} {' '.join(redact.text(word) for word in words)}")
    return ", ".join(shown) or "no details"


def _probe(connection: Connection) -> tuple[bool, str, int | None]:
    provider = auth_for(connection)
    if connection.auth_type == Connection.AuthType.OAUTH2 and not connection.is_amazon_connect:
        grant = provider.fetch_token_for_test()
        # The token just fetched is in play too: the grant may echo it.
        details = _grant_details(grant, Redactor(provider.secrets()))
        token_host = transport.host_of(connection.token_url)
        return True, TOKEN_RECEIVED.format(host=token_host, details=details), None
    base = connection.endpoint.rstrip("/")
    path = _list_instances_path() if connection.is_amazon_connect else "/"
    request = provider.apply(OutboundRequest("GET", base + path))
    host = transport.host_of(base)
    response = transport.send(request, allowed_hosts={host})
    status = response.status
    if status in (401, 403):
        return False, CREDENTIALS_REFUSED.format(host=host, status=status), status
    return status < 400, REACHED.format(host=host, status=status), status


def connection_test_run(*, connection: Connection, actor) -> ConnectionTestResult:
    """Run the probe, record its outcome on the connection and in the audit trail."""
    started = time.monotonic()
    redact = Redactor(getattr(connection, name) for name in Connection.SECRET_FIELDS)
    status = None
    try:
        ok, summary, status = _probe(connection)
    except (AuthError, transport.OutboundError) as error:
        ok, summary = False, error.message
    except SecretDecryptionError as error:
        ok, summary = False, str(error)
    except Exception as error:
        # Never a 500 for an API's odd answer.
        log_unexpected(logger, f"Testing connection {connection.pk} failed", error)
        ok, summary = False, TEST_CRASHED
    summary = redact.text(summary)
    result = ConnectionTestResult(ok, summary, (time.monotonic() - started) * 1000, status)
    services.connection_record_test(connection=connection, actor=actor, ok=ok, summary=summary)
    return result
