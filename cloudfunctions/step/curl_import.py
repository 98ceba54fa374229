"""Turn a pasted curl command into a cloud-function request, leaving credentials behind.

Choices the editor relies on:

- Every URI, query and header field is a CEL string literal (see `cloudfunctions.cel.literals`).
- A form body (`-d a=1 -d b=2`) becomes a JSON object of its fields, with a warning: a step
  always sends its body as JSON text, and an object keeps the field names the designer saw.
  Text that is neither JSON nor a form is kept as written, with a warning, for the designer
  to fix before saving.
- Credentials (Authorization, API-key-like headers and parameters, `-u`, cookies, URL user
  info, signing headers) are never copied; each is named in `credentials` without its value.
- Each warning and credential message is said once, however often the command repeats it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from cloudfunctions.cel.literals import cel_string_literal
from cloudfunctions.http.headers import HEADERS_SET_WHEN_SENT
from cloudfunctions.step.curl_messages import (
    BAD_URL,
    BODY_NOT_JSON,
    COMMAND_TOO_LONG,
    FORM_BODY_AS_JSON,
    FORM_FIELD_NOT_COPIED,
    HEADER_DROPPED,
    HEADER_IGNORED,
    HEADER_NOT_COPIED,
    HOST_DIFFERS,
    IDEMPOTENCY_KEY_DROPPED,
    NAME_LIMIT,
    NO_URL,
    PATH_OUTSIDE_BASE,
    QUERY_NOT_COPIED,
    SEVERAL_URLS,
    SEVERAL_URLS_AFTER_UNKNOWN,
    SIGNING_HEADER_NOT_COPIED,
    UNSUPPORTED_METHOD,
    UNSUPPORTED_OPTION,
    UNSUPPORTED_SCHEME,
    URL_USER_NOT_COPIED,
    CurlImportError,
)
from cloudfunctions.step.curl_options import CurlOptions, curl_options
from cloudfunctions.step.curl_words import shell_words
from orchestration.jsontext import JSONTextError, parse_json

__all__ = ["MAX_COMMAND_BYTES", "CurlImport", "CurlImportError", "curl_import"]

# The most a designer pastes by hand is a few KB; a cap keeps one request's cost small
# whatever is pasted (the work below is linear, so this bounds it).
MAX_COMMAND_BYTES = 64 * 1024
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_CREDENTIAL_HEADER_WORDS = ("token", "secret", "key", "auth")
_CREDENTIAL_PARAMETERS = frozenset(
    {"key", "sig", "auth", "password", "passwd", "pwd", "authorization", "code", "session"}
)
_CREDENTIAL_PARAMETER_WORDS = (
    "token",
    "secret",
    "password",
    "signature",
    "apikey",
    "accesskey",
    "privatekey",
    "subscriptionkey",
    "credential",
)


@dataclass
class CurlImport:
    """A request read from curl: CEL literals for the editor, plus what needs attention."""

    method: str
    uri: str
    query: list[dict[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    body: str = ""
    warnings: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)


def curl_import(command: str, *, base_url: str | None) -> CurlImport:
    """Read a curl command; raise CurlImportError when it cannot become a request."""
    command = command or ""
    # Characters first: a long paste is refused without encoding it.
    if len(command) > MAX_COMMAND_BYTES or _utf8_length(command) > MAX_COMMAND_BYTES:
        raise CurlImportError(COMMAND_TOO_LONG.format(limit=MAX_COMMAND_BYTES // 1024))
    parsed = curl_options(shell_words(command))
    if parsed.head:
        raise CurlImportError(
            UNSUPPORTED_OPTION.format(option="-I/--head", reason="a step cannot send HEAD")
        )
    if not parsed.urls:
        raise CurlImportError(NO_URL)
    if len(parsed.urls) > 1:
        if parsed.unknown:
            raise CurlImportError(SEVERAL_URLS_AFTER_UNKNOWN.format(option=parsed.unknown[0]))
        raise CurlImportError(SEVERAL_URLS)
    result = CurlImport(method="GET", uri="", warnings=list(parsed.warnings))
    result.credentials = parsed.credentials

    url = _split_url(parsed.urls[0])
    if url.username is not None or url.password is not None:
        result.credentials.append(URL_USER_NOT_COPIED)
    result.uri = cel_string_literal(_relative_path(url, base_url, result.warnings))
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        _add_query(result, key, value)

    data = parsed.joined_data()
    if parsed.method is not None:
        method = parsed.method.upper()
    elif parsed.get:
        method = "GET"
    elif parsed.data:
        method = "POST"
    else:
        method = "GET"
    if method not in METHODS:
        raise CurlImportError(UNSUPPORTED_METHOD.format(method=method[:NAME_LIMIT]))
    result.method = method

    content_type = _add_headers(result, parsed)
    if parsed.get:
        for key, value in parse_qsl(data, keep_blank_values=True):
            _add_query(result, key, value)
    elif parsed.data:
        result.body = _body(result, data, content_type, parsed.json)
    result.warnings = list(dict.fromkeys(result.warnings))
    result.credentials = list(dict.fromkeys(result.credentials))
    return result


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _split_url(raw: str):
    text = raw if "://" in raw else "https://" + raw
    try:
        url = urlsplit(text)
        url.port  # noqa: B018 -- reading it validates the port
    except ValueError:
        raise CurlImportError(BAD_URL) from None
    if url.scheme.lower() not in ("http", "https"):
        raise CurlImportError(UNSUPPORTED_SCHEME.format(scheme=url.scheme[:NAME_LIMIT]))
    if not url.hostname:
        raise CurlImportError(BAD_URL)
    return url


def _origin(url) -> str:
    scheme = url.scheme.lower()
    default = 443 if scheme == "https" else 80
    port = url.port or default
    host = (url.hostname or "").lower()
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def _relative_path(url, base_url: str | None, warnings: list[str]) -> str:
    path = url.path or "/"
    if not base_url:
        return path
    base = urlsplit(base_url)
    if _origin(url) != _origin(base):
        warnings.append(HOST_DIFFERS.format(origin=_origin(url), base=_origin(base)))
        return path
    base_path = base.path.rstrip("/")
    if not base_path:
        return path
    if path == base_path:
        return "/"
    if path.startswith(base_path + "/"):
        return path[len(base_path) :]
    warnings.append(PATH_OUTSIDE_BASE.format(base_path=base_path))
    return path


def _is_credential_parameter(name: str) -> bool:
    compact = re.sub(r"[^a-z0-9]", "", name.lower())
    return (
        compact in _CREDENTIAL_PARAMETERS
        or compact.startswith("xamz")
        or any(word in compact for word in _CREDENTIAL_PARAMETER_WORDS)
    )


def _add_query(result: CurlImport, key: str, value: str) -> None:
    if _is_credential_parameter(key):
        result.credentials.append(QUERY_NOT_COPIED.format(name=key[:NAME_LIMIT]))
        return
    result.query.append({"key": cel_string_literal(key), "value": cel_string_literal(value)})


def _add_headers(result: CurlImport, parsed: CurlOptions) -> str:
    """Copy the safe headers; return the Content-Type that the body will be sent with."""
    content_type = ""
    names = set()
    for line in parsed.headers:
        name, colon, value = line.partition(":")
        if not colon:
            # curl's "Name;" sends an empty header; anything else without a colon is dropped.
            name, semicolon, rest = line.partition(";")
            if not semicolon or rest.strip() or not name.strip():
                result.warnings.append(HEADER_IGNORED)
                continue
            value = ""
        name, value = name.strip(), value.strip()
        lower = name.lower()
        shown = name[:NAME_LIMIT]
        if colon and not value:
            # "Name:" only removes a header curl would add itself.
            continue
        if lower.startswith("x-amz-"):
            result.credentials.append(SIGNING_HEADER_NOT_COPIED.format(name=shown))
        elif lower == "idempotency-key":
            result.warnings.append(IDEMPOTENCY_KEY_DROPPED)
        elif lower in _CREDENTIAL_HEADERS or any(w in lower for w in _CREDENTIAL_HEADER_WORDS):
            result.credentials.append(HEADER_NOT_COPIED.format(name=shown))
        elif lower in HEADERS_SET_WHEN_SENT:
            result.warnings.append(HEADER_DROPPED.format(name=shown))
        else:
            if lower == "content-type":
                content_type = value
            names.add(lower)
            result.headers.append(
                {"key": cel_string_literal(name), "value": cel_string_literal(value)}
            )
    if parsed.json and not parsed.get:
        # --json sends these unless the command sets its own.
        for name in ("Content-Type", "Accept"):
            if name.lower() not in names:
                result.headers.append(
                    {"key": cel_string_literal(name), "value": '"application/json"'}
                )
        content_type = content_type or "application/json"
    return content_type


def _body(result: CurlImport, data: str, content_type: str, is_json: bool) -> str:
    if not data.strip():
        return ""
    try:
        parsed = parse_json(data)
    except JSONTextError:
        pass
    else:
        if isinstance(parsed, dict):
            # Credentials in a JSON body are as much credentials as in a form body.
            for name in [key for key in parsed if _is_credential_parameter(key)]:
                result.credentials.append(FORM_FIELD_NOT_COPIED.format(name=name[:NAME_LIMIT]))
                del parsed[name]
        return json.dumps(parsed, indent=2, ensure_ascii=False)
    media_type = content_type.split(";")[0].strip().lower()
    if is_json or (media_type and media_type != "application/x-www-form-urlencoded"):
        result.warnings.append(BODY_NOT_JSON)
        return data
    try:
        fields = parse_qsl(data, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        result.warnings.append(BODY_NOT_JSON)
        return data
    values: dict[str, str | list[str]] = {}
    for name, value in fields:
        if _is_credential_parameter(name):
            result.credentials.append(FORM_FIELD_NOT_COPIED.format(name=name[:NAME_LIMIT]))
            continue
        if name not in values:
            values[name] = value
            continue
        # A repeated field ("tags=a&tags=b") keeps every value, in order; appended in
        # place, as a copy per repeat would be quadratic in the number of repeats.
        previous = values[name]
        if isinstance(previous, list):
            previous.append(value)
        else:
            values[name] = [previous, value]
    result.warnings.append(FORM_BODY_AS_JSON)
    # The form's Content-Type would now mislabel a JSON body.
    result.headers = [row for row in result.headers if row["key"].lower() != '"content-type"']
    return json.dumps(values, indent=2, ensure_ascii=False)
