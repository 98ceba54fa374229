"""Run a cloud function: evaluate its CEL fields, build and authenticate the request,
send it through the one outbound transport, and capture what came back.

Every secret in play is registered with a Redactor before anything is shown or stored.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from cloudfunctions import cel
from cloudfunctions.connections.auth import AuthError
from cloudfunctions.connections.auth.oauth2 import TokenEndpointError
from cloudfunctions.connections.providers import auth_for
from cloudfunctions.http import transport
from cloudfunctions.http.headers import HEADER_NAME, HEADER_SET_WHEN_SENT, HEADERS_SET_WHEN_SENT
from cloudfunctions.http.redaction import MASK, Redactor
from cloudfunctions.http.request import OutboundRequest
from cloudfunctions.http.url_builder import BASE_URL_INVALID, UnsafeURI, build_url
from cloudfunctions.models import CloudFunction
from cloudfunctions.secrets import SecretDecryptionError
from cloudfunctions.step.operations import body_idempotency_token
from orchestration.failures import log_unexpected
from orchestration.jsontext import JSONTextError, parse_json
from orchestration.processes.step_kinds import StepResult

logger = logging.getLogger(__name__)

NO_CONNECTION = "The cloud function has no connection."
HEADER_NAME_INVALID = "{field}: {name!r} is not a valid header name."
HEADER_VALUE_INVALID = (
    "{field}: a header value cannot hold control characters or start with a space."
)
TEXT_NOT_UNICODE = "{field}: the value holds characters that are not valid Unicode text."
INTERNAL_ERROR = "The step failed unexpectedly; the details are in the server log."
BODY_NOT_JSON = "Body: not valid JSON ({msg} at line {line}, column {column})."
BODY_NOT_OBJECT = "Body: the CEL expression must evaluate to a map or a list."
BODY_NOT_FINITE = "Body: NaN and infinite numbers cannot be sent as JSON."
HTTP_ERROR = "{host} answered HTTP {status}."
# Captured JSON nested deeper than this is kept as text (pages and CEL walk captures).
CAPTURE_MAX_DEPTH = 64
RETRYABLE_STATUS = {429, 500, 502, 503, 504}
# Names the idempotency tokens derived from attempt keys; never change it, or
# a retry that spans a deploy would send a new token and could be applied twice.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c1d4e-9a57-4c1e-8a43-2f4f5b0c7d21")
_NO_BODY = object()
# Control characters (tab aside) have no place in a header value; NUL would reach the wire.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]|^\s")
# Lone surrogates come from JSON like "\ud800"; they cannot be encoded or stored.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class StepFailure(Exception):
    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage
        self.message = message


@dataclass(frozen=True)
class BuiltRequest:
    request: OutboundRequest  # before credentials
    host: str


def cel_context(context: dict[str, Any]) -> tuple[dict, dict]:
    return context.get("trigger") or {}, context.get("events") or {}


def _evaluate_string(source: str, field: str, context: dict) -> str:
    trigger, events = cel_context(context)
    try:
        value = cel.evaluate_string(source, trigger=trigger, events=events, field=field)
    except cel.CelError as error:
        raise StepFailure("cel", error.message) from None
    if _SURROGATE.search(value):
        raise StepFailure("cel", TEXT_NOT_UNICODE.format(field=field))
    return value


def _body_value(cf: CloudFunction, context: dict) -> Any:
    """Return the body's JSON value, or _NO_BODY when the step sends none."""
    if not cf.body.strip():
        return _NO_BODY
    if cf.body_mode == CloudFunction.BodyMode.CEL:
        trigger, events = cel_context(context)
        try:
            value = cel.evaluate(cf.body, trigger=trigger, events=events, field="Body")
        except cel.CelError as error:
            raise StepFailure("cel", error.message) from None
        if not isinstance(value, dict | list):
            raise StepFailure("cel", BODY_NOT_OBJECT)
    else:
        try:
            value = parse_json(cf.body)
        except JSONTextError as exc:
            message = BODY_NOT_JSON.format(msg=exc.msg, line=exc.line, column=exc.column)
            raise StepFailure("body", message) from None
    return value


def _encoded(value: Any) -> bytes | None:
    if value is _NO_BODY:
        return None
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        # CEL computes doubles such as double("NaN") or 1e308 * 10.0; JSON has no spelling.
        raise StepFailure("cel", BODY_NOT_FINITE) from None
    return text.encode()


def idempotency_token(attempt_key: str) -> str:
    """Return the idempotency token every attempt carrying ``attempt_key`` sends: a UUID,
    36 characters whatever the step's key, inside every API's limit (Amazon Connect's 500,
    64 at some payment APIs)."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, attempt_key))


def _with_client_token(
    value: Any, *, method: str, url: str, endpoint: str, attempt_key: str
) -> Any:
    """Add the operation's idempotency-token member to a JSON object body, unless the
    designer set it: Amazon Connect deduplicates on that member, not on Idempotency-Key."""
    if not isinstance(value, dict):
        return value
    # Operations are matched on the path below the endpoint, which an override may move.
    base_path = urlsplit(endpoint).path.rstrip("/")
    path = urlsplit(url).path.removeprefix(base_path)
    member = body_idempotency_token(method, path)
    if member is None or member in value:
        return value
    return {**value, member: idempotency_token(attempt_key)}


def build_request(cf: CloudFunction, context: dict, *, attempt_key: str | None) -> BuiltRequest:
    """Evaluate every field and return the unauthenticated request."""
    connection = cf.connection
    if connection is None:
        raise StepFailure("config", NO_CONNECTION)
    uri = _evaluate_string(cf.uri, "URI", context)
    query = []
    for number, row in enumerate(cf.query_params, start=1):
        key = _evaluate_string(row["key"], f"Query parameter {number} key", context)
        value = _evaluate_string(row["value"], f"Query parameter {number} value", context)
        query.append((key, value))
    headers: dict[str, str] = {}
    for number, row in enumerate(cf.headers, start=1):
        field = f"Header {number} key"
        name = _evaluate_string(row["key"], field, context)
        if not HEADER_NAME.match(name):
            raise StepFailure("cel", HEADER_NAME_INVALID.format(field=field, name=name[:60]))
        if name.lower() in HEADERS_SET_WHEN_SENT:
            raise StepFailure("cel", f"{field}: {HEADER_SET_WHEN_SENT.format(name=name)}")
        value = _evaluate_string(row["value"], f"Header {number} value", context)
        if _CONTROL.search(value):
            raise StepFailure("cel", HEADER_VALUE_INVALID.format(field=f"Header {number} value"))
        headers[name] = value
    body_value = _body_value(cf, context)
    endpoint = connection.endpoint
    try:
        url = build_url(endpoint, uri, query)
    except UnsafeURI as exc:
        raise StepFailure(
            "url", str(exc) if str(exc) == BASE_URL_INVALID else f"URI: {exc}"
        ) from None
    if attempt_key and connection.is_amazon_connect:
        # Added before signing: SigV4 covers these very bytes.
        body_value = _with_client_token(
            body_value, method=cf.method, url=url, endpoint=endpoint, attempt_key=attempt_key
        )
    body = _encoded(body_value)
    lower = {name.lower() for name in headers}
    if body is not None and "content-type" not in lower:
        headers["Content-Type"] = "application/json"
    if attempt_key and cf.method != "GET" and "idempotency-key" not in lower:
        headers["Idempotency-Key"] = idempotency_token(attempt_key)
    request = OutboundRequest(cf.method, url, headers=headers, body=body).framed()
    return BuiltRequest(request, transport.host_of(endpoint))


def _shown(request: OutboundRequest, redact: Redactor, *, connection: str = "") -> dict:
    body = request.body
    headers = {name: _masked_authorization(name, value) for name, value in request.headers.items()}
    shown = {
        "method": request.method,
        "url": request.url,
        "headers": headers,
        "body": None if body is None else body.decode("utf-8", "replace"),
    }
    # Present on every request stored since they are kept as sent: "" until the connection
    # added its credentials (a token that could not be fetched), its name after.
    shown["connection"] = connection
    return redact(shown)


_SIGV4_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]{4})[^,\s]*")
_SIGV4_SIGNATURE = re.compile(r"Signature=[0-9a-fA-F]+")


def _masked_authorization(name: str, value: str) -> str:
    """An Authorization value with its credential masked, its scheme kept: Bearer ••••••,
    or SigV4's Credential=AKIA…/…, Signature=••••••."""
    if name.lower() != "authorization":
        return value
    scheme, _, rest = value.partition(" ")
    if scheme.upper().startswith("AWS4-"):
        rest = _SIGV4_CREDENTIAL.sub(lambda m: f"Credential={m.group(1)}…/…", rest)
        return f"{scheme} {_SIGV4_SIGNATURE.sub(f'Signature={MASK}', rest)}"
    return f"{scheme} {MASK}" if rest else MASK


def _nests_deeper(value: Any, limit: int) -> bool:
    """Return whether containers nest in value more than limit levels, without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _parsed(text: str) -> tuple[bool, Any]:
    """Return (True, value) when text is JSON of at most CAPTURE_MAX_DEPTH levels."""
    if not text.strip():
        return False, None
    try:
        value = parse_json(text)
    except JSONTextError:
        return False, None
    # Deeper answers are kept as text: pages, storage and CEL all walk what is captured.
    return (False, None) if _nests_deeper(value, CAPTURE_MAX_DEPTH) else (True, value)


def capture(response: transport.OutboundResponse, redact: Redactor) -> dict:
    """Turn a response into the completion event's payload, secrets masked.

    Whatever the content type says, JSON is masked as JSON (every string, key and number)
    and as text (every spelling); a JSON content type makes the body the parsed value.
    """
    content_type = response.headers.get("content-type", "")
    # A cut answer may end inside a character: leave those bytes out rather than show a
    # U+FFFD there, behind which the start of a secret would go unrecognised.
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = decoder.decode(response.body, final=not response.truncated)
    # NUL cannot be stored in PostgreSQL text or JSON; binary answers carry plenty.
    text = text.replace("\x00", "\ufffd")
    if response.truncated:
        body: Any = redact.cut_text(text)
    else:
        is_json, value = _parsed(text)
        if is_json and "json" in content_type:
            body = redact(value)
        else:
            body = redact.text(text)
            if is_json:
                still_json, left = _parsed(body)
                if not still_json or redact(left) != left:
                    # A secret the text search did not see (a number spelled 1.2e7, say),
                    # or a mask across the syntax: show the parsed answer, masked.
                    body = redact.text(json.dumps(redact(value), ensure_ascii=False))
            elif not text.strip() and "json" in content_type:
                body = None
    return {
        "status": response.status,
        "headers": redact.headers(
            {k: v.replace("\x00", "\ufffd") for k, v in response.headers.items()}
        ),
        "body": body,
        "duration_ms": round(response.duration_ms, 1),
        "truncated": response.truncated,
    }


def cloud_function_execute(
    *, cloud_function: CloudFunction, context: dict[str, Any], attempt_key: str | None = None
) -> StepResult:
    """Run the request the cloud function describes; never raise for expected failures."""
    started = time.monotonic()
    redact = Redactor()
    shown: dict = {}

    def failed(
        stage: str, message: str, retryable: bool = False, retry_after: float | None = None
    ) -> StepResult:
        return StepResult(
            ok=False,
            request=shown,
            error_stage=stage,
            error_message=redact.text(message),
            duration_ms=(time.monotonic() - started) * 1000,
            retryable=retryable,
            retry_after=retry_after if retryable else None,
        )

    try:
        built = build_request(cloud_function, context, attempt_key=attempt_key)
        provider = auth_for(cloud_function.connection)
        for secret in provider.secrets():
            redact.add(secret)
        # What is shown is the request before credentials: nothing to mask but echoes.
        shown = _shown(built.request, redact)
        allowed = auth_hosts(cloud_function.connection)
        request = provider.apply(built.request)
        _add_credentials(redact, provider, request)
        # Now as sent, with what the connection added (its key, token or signature) masked.
        shown = _shown(request, redact, connection=cloud_function.connection.name)
        # The step's Timeout, within the overall deadline every outbound call has.
        deadline = _deadline(cloud_function)
        response = transport.send(request, allowed_hosts=allowed, deadline_seconds=deadline)
        if response.status == 401 and provider.renew():
            request = provider.apply(built.request)
            _add_credentials(redact, provider, request)
            response = transport.send(request, allowed_hosts=allowed, deadline_seconds=deadline)
        # Inside the try: should capturing ever fail, the step fails (logged), never a 500.
        payload = capture(response, redact)
    except StepFailure as failure:
        return failed(failure.stage, failure.message)
    except TokenEndpointError as error:
        # Only a transient answer (429, 5xx) is worth another attempt: a refusal such as
        # invalid_client would be repeated word for word, and may lock the client out.
        return failed("auth", error.message, error.retryable, error.retry_after)
    except AuthError as error:
        return failed("auth", error.message)
    except SecretDecryptionError as error:
        return failed("secrets", str(error))
    except transport.OutboundError as error:
        retryable = error.stage in ("timeout", "connect", "dns", "protocol")
        return failed(error.stage, error.message, retryable=retryable)
    except Exception as exc:
        # Never let a surprise leave a run hanging or reach a page.
        log_unexpected(logger, f"Cloud function {cloud_function.pk} failed", exc)
        return failed("internal", INTERNAL_ERROR)
    ok = response.status < 400
    return StepResult(
        ok=ok,
        payload=payload,
        request=shown,
        error_stage="" if ok else "http",
        error_message="" if ok else HTTP_ERROR.format(host=built.host, status=response.status),
        duration_ms=(time.monotonic() - started) * 1000,
        retryable=response.status in RETRYABLE_STATUS,
        retry_after=transport.retry_after_seconds(response.headers.get("retry-after")),
    )


def _deadline(cf: CloudFunction) -> float | None:
    if not cf.timeout_seconds:
        return None
    return min(float(cf.timeout_seconds), settings.OUTBOUND_DEADLINE_SECONDS)


def _add_credentials(redact: Redactor, provider, request: OutboundRequest) -> None:
    """Register every credential in play: the provider's, and the Authorization value sent."""
    for secret in provider.secrets():
        redact.add(secret)
    sent = (v for name, v in request.headers.items() if name.lower() == "authorization")
    redact.add_authorization(next(sent, None))


def auth_hosts(connection) -> set[str]:
    """The hosts a connection's requests may go to: its endpoint only."""
    return {transport.host_of(connection.endpoint)}
