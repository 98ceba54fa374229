"""Turn a pasted curl command into a cloud-function request, leaving credentials behind.

Choices the editor relies on:

- Every URI, query and header field is a CEL string literal (see `cloudfunctions.cel.literals`).
- A form body (`-d a=1 -d b=2`) becomes a JSON object of its fields, with a warning: a step
  always sends its body as JSON text, and an object keeps the field names the designer saw.
  Text that is neither JSON nor a form is kept as written, with a warning, for the designer
  to fix before saving.
- Credentials (Authorization, API-key-like headers and parameters, `-u`, cookies, URL user
  info, signing headers) are never copied; each is named in `credentials` without its value.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit

from cloudfunctions.cel.literals import cel_string_literal
from cloudfunctions.http.headers import HEADERS_SET_WHEN_SENT
from orchestration.jsontext import JSONTextError, parse_json

__all__ = [
    "CurlImport",
    "CurlImportError",
    "curl_import",
]

# Errors.
EMPTY_COMMAND = "Paste a curl command."
NOT_CURL = "The command must start with curl."
UNBALANCED_QUOTES = "The command has an unclosed quote or a trailing backslash: {detail}."
NO_URL = "The command has no URL."
SEVERAL_URLS = "The command has more than one URL; import one request at a time."
SEVERAL_URLS_AFTER_UNKNOWN = (
    "The command has more than one URL, perhaps the value of the unsupported option {option}; "
    "remove that option and import again."
)
BAD_URL = "The URL could not be read; use an https:// address."
UNSUPPORTED_SCHEME = "Only http and https URLs can be imported, not {scheme}."
UNSUPPORTED_METHOD = "The method {method} is not supported; use GET, POST, PUT, PATCH or DELETE."
UNSUPPORTED_OPTION = "The option {option} is not supported: {reason}."
MISSING_VALUE = "The option {option} needs a value."
READS_FILE = "The option {option} reads a file, which cannot be imported; paste its content."

# Warnings.
INSECURE_IGNORED = "-k/--insecure was ignored: certificate checks are always on."
REDIRECTS_IGNORED = "-L/--location was ignored: redirects are never followed."
PROXY_IGNORED = "The proxy option {option} was ignored: requests go out directly."
OPTION_IGNORED = "The option {option} is not supported and was ignored."
REST_IGNORED = "Only the curl command was imported; what follows {token} was ignored."
HOST_DIFFERS = (
    "The URL's address ({origin}) differs from the connection's ({base}); "
    "only its path was kept, so check the URI."
)
PATH_OUTSIDE_BASE = (
    "The URL's path is not under the connection's base path ({base_path}); "
    "the whole path was kept, so check the URI."
)
FORM_BODY_AS_JSON = (
    "The form body was turned into a JSON object: this step sends its body as JSON, "
    "so check that the API accepts JSON."
)
BODY_NOT_JSON = "The body is not valid JSON; fix it before saving, as the body is sent as JSON."
HEADER_DROPPED = "The {name} header was not copied: it is set when the request is sent."
HEADER_IGNORED = "A header option without a colon was ignored."
IDEMPOTENCY_KEY_DROPPED = "The Idempotency-Key header was not copied: each run sends its own."

# Credentials: each names what was left out, never its value.
HEADER_NOT_COPIED = "The {name} header was not copied: keep credentials on the connection."
QUERY_NOT_COPIED = (
    'The query parameter "{name}" was not copied: keep credentials on the connection.'
)
FORM_FIELD_NOT_COPIED = (
    'The body field "{name}" was not copied: keep credentials on the connection.'
)
USER_NOT_COPIED = (
    "The user name and password ({option}) were not copied: keep credentials on the connection."
)
URL_USER_NOT_COPIED = (
    "The user name and password in the URL were not copied: keep credentials on the connection."
)
BEARER_NOT_COPIED = (
    "The bearer token ({option}) was not copied: keep credentials on the connection."
)
COOKIES_NOT_COPIED = "The cookies ({option}) were not copied: keep credentials on the connection."
SIGNING_NOT_COPIED = "The signing option {option} was not copied: the connection signs requests."
SIGNING_HEADER_NOT_COPIED = "The {name} header was not copied: the connection signs requests."
NETRC_NOT_COPIED = "The option {option} was ignored: keep credentials on the connection."

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Names are cut in messages so a pasted blob cannot flood the editor.
_NAME_LIMIT = 60

_FLAG_ALIASES = {
    "-s": "--silent",
    "-S": "--show-error",
    "-L": "--location",
    "-k": "--insecure",
    "-v": "--verbose",
    "-i": "--include",
    "-G": "--get",
    "-I": "--head",
    "-f": "--fail",
    "-g": "--globoff",
    "-N": "--no-buffer",
    "-n": "--netrc",
    "-#": "--progress-bar",
    "-0": "--http1.0",
    "-q": "--disable",
}
_VALUE_ALIASES = {
    "-X": "--request",
    "-H": "--header",
    "-d": "--data",
    "-u": "--user",
    "-b": "--cookie",
    "-A": "--user-agent",
    "-e": "--referer",
    "-F": "--form",
    "-T": "--upload-file",
    "-o": "--output",
    "-m": "--max-time",
    "-w": "--write-out",
    "-x": "--proxy",
    "-U": "--proxy-user",
    "-E": "--cert",
    "-c": "--cookie-jar",
    "-D": "--dump-header",
    "-K": "--config",
    "-r": "--range",
    "-y": "--speed-time",
    "-Y": "--speed-limit",
    "-z": "--time-cond",
}
# Output, timing and transport details that do not change what is requested.
_HARMLESS_FLAGS = frozenset(
    {"--silent", "--show-error", "--verbose", "--include", "--fail", "--fail-with-body"}
    | {"--globoff", "--no-buffer", "--progress-bar", "--compressed", "--no-progress-meter"}
    | {"--http1.0", "--http1.1", "--http2", "--http2-prior-knowledge", "--tcp-nodelay"}
    | {"--disable", "--no-keepalive", "--no-sessionid", "--styled-output", "--no-styled-output"}
    | {"--remote-name", "--remote-name-all", "--create-dirs", "--raw", "--tr-encoding"}
    | {"--path-as-is", "--ssl-reqd", "--tlsv1.2", "--tlsv1.3", "--ipv4", "--ipv6"}
)
_HARMLESS_VALUE_OPTIONS = frozenset(
    {"--output", "--max-time", "--connect-timeout", "--retry", "--retry-delay"}
    | {"--retry-max-time", "--write-out", "--cookie-jar", "--dump-header", "--trace"}
    | {"--trace-ascii", "--stderr", "--limit-rate", "--max-redirs", "--speed-time"}
    | {"--speed-limit", "--max-filesize", "--keepalive-time", "--expect100-timeout"}
)
# Options that change the request in ways a step cannot express; ignored with a warning.
_IGNORED_VALUE_OPTIONS = frozenset(
    {"--cacert", "--capath", "--cert", "--cert-type", "--key-type", "--resolve"}
    | {"--connect-to", "--interface", "--range", "--time-cond", "--config", "--variable"}
    | {"--ciphers", "--pinnedpubkey", "--dns-servers", "--local-port", "--unix-socket"}
)
_PROXY_OPTIONS = frozenset({"--proxy", "--preproxy", "--socks5", "--socks5-hostname"})
_DATA_OPTIONS = frozenset(
    {"--data", "--data-ascii", "--data-binary", "--data-raw", "--data-urlencode", "--json"}
)
_VALUE_OPTIONS = (
    frozenset(_VALUE_ALIASES.values())
    | _HARMLESS_VALUE_OPTIONS
    | _IGNORED_VALUE_OPTIONS
    | _PROXY_OPTIONS
    | _DATA_OPTIONS
    | {"--url", "--oauth2-bearer", "--aws-sigv4", "--key", "--pass", "--proxy-user"}
)
_SHELL_SEPARATORS = frozenset({"|", "||", "&&", ";", "&", ">", ">>", "2>", "2>&1"})
_CONTINUATION = re.compile(r"\\\r?\n")
# Browsers' "Copy as cURL" quotes awkward bodies as $'...', which shlex does not know.
_ANSI_C_QUOTED = re.compile(r"(?<!\S)\$'((?:[^'\\]|\\.)*)'", re.S)
_ANSI_C_ESCAPE = re.compile(
    r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|.)", re.S
)
_ANSI_C_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ANSI_C_SIMPLE |= {"e": "\x1b", "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_PROMPT = re.compile(r"^\s*\$\s+")

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


class CurlImportError(ValueError):
    """A curl command that cannot be imported; the message is shown to the designer."""


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


@dataclass
class _Parsed:
    urls: list[str] = field(default_factory=list)
    method: str | None = None
    headers: list[str] = field(default_factory=list)
    data: list[tuple[str, str]] = field(default_factory=list)
    get: bool = False
    head: bool = False
    json: bool = False
    unknown: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)


def curl_import(command: str, *, base_url: str | None) -> CurlImport:
    """Read a curl command; raise CurlImportError when it cannot become a request."""
    parsed = _parse(_tokens(command))
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
    result = CurlImport(method="GET", uri="", warnings=parsed.warnings)
    result.credentials = parsed.credentials

    url = _split_url(parsed.urls[0])
    if url.username is not None or url.password is not None:
        result.credentials.append(URL_USER_NOT_COPIED)
    result.uri = cel_string_literal(_relative_path(url, base_url, result.warnings))
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        _add_query(result, key, value)

    data = _joined_data(parsed)
    if parsed.method is not None:
        method = parsed.method.upper()
    elif parsed.get:
        method = "GET"
    elif parsed.data:
        method = "POST"
    else:
        method = "GET"
    if method not in METHODS:
        raise CurlImportError(UNSUPPORTED_METHOD.format(method=method[:_NAME_LIMIT]))
    result.method = method

    content_type = _add_headers(result, parsed)
    if parsed.get:
        for key, value in parse_qsl(data, keep_blank_values=True):
            _add_query(result, key, value)
    elif parsed.data:
        result.body = _body(result, data, content_type, parsed.json)
    return result


def _ansi_c_char(match: re.Match) -> str:
    code = match.group(1)
    if code[0] in "xuU" and len(code) > 1:
        point = min(int(code[1:], 16), 0x10FFFF)
        # A lone surrogate can be neither encoded nor sent: U+FFFD, as a decoder would.
        return "\ufffd" if 0xD800 <= point <= 0xDFFF else chr(point)
    if code[0] in "01234567":
        return chr(int(code, 8) & 0xFF)
    return _ANSI_C_SIMPLE.get(code, "\\" + code)


def _requote_ansi_c(match: re.Match) -> str:
    return shlex.quote(_ANSI_C_ESCAPE.sub(_ansi_c_char, match.group(1)))


def _tokens(command: str) -> list[str]:
    text = _PROMPT.sub("", _CONTINUATION.sub(" ", command or ""))
    text = _ANSI_C_QUOTED.sub(_requote_ansi_c, text)
    if not text.strip():
        raise CurlImportError(EMPTY_COMMAND)
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise CurlImportError(UNBALANCED_QUOTES.format(detail=str(exc).lower())) from None
    if not tokens or tokens[0].lower() not in ("curl", "curl.exe"):
        raise CurlImportError(NOT_CURL)
    return tokens[1:]


def _parse(tokens: list[str]) -> _Parsed:
    parsed = _Parsed()
    index = 0
    options_done = False
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token in _SHELL_SEPARATORS:
            parsed.warnings.append(REST_IGNORED.format(token=token))
            break
        if options_done or not token.startswith("-") or token == "-":
            parsed.urls.append(token)
            continue
        if token == "--":
            options_done = True
            continue
        if token.startswith("--"):
            if token in _VALUE_OPTIONS:
                if index >= len(tokens):
                    raise CurlImportError(MISSING_VALUE.format(option=token))
                _apply(parsed, token, tokens[index])
                index += 1
            else:
                _apply(parsed, token, None)
            continue
        # Short options combine ("-sSL") and take a value attached or as the next token.
        for position in range(1, len(token)):
            short = "-" + token[position]
            if short in _VALUE_ALIASES:
                value = token[position + 1 :]
                if not value:
                    if index >= len(tokens):
                        raise CurlImportError(MISSING_VALUE.format(option=short))
                    value = tokens[index]
                    index += 1
                _apply(parsed, _VALUE_ALIASES[short], value)
                break
            _apply(parsed, _FLAG_ALIASES.get(short, short), None)
    return parsed


def _apply(parsed: _Parsed, option: str, value: str | None) -> None:
    if value is None:
        _apply_flag(parsed, option)
    elif option == "--url":
        parsed.urls.append(value)
    elif option == "--request":
        parsed.method = value
    elif option == "--header":
        if value.startswith("@"):
            raise CurlImportError(READS_FILE.format(option="-H/--header"))
        parsed.headers.append(value)
    elif option == "--user-agent":
        parsed.headers.append(f"User-Agent: {value}")
    elif option == "--referer":
        parsed.headers.append(f"Referer: {value}")
    elif option in _DATA_OPTIONS:
        parsed.data.append((option, _data_value(option, value)))
        parsed.json = parsed.json or option == "--json"
    elif option in ("--user", "--proxy-user"):
        parsed.credentials.append(USER_NOT_COPIED.format(option=_short_long(option)))
    elif option == "--oauth2-bearer":
        parsed.credentials.append(BEARER_NOT_COPIED.format(option=option))
    elif option == "--cookie":
        parsed.credentials.append(COOKIES_NOT_COPIED.format(option="-b/--cookie"))
    elif option == "--aws-sigv4":
        parsed.credentials.append(SIGNING_NOT_COPIED.format(option=option))
    elif option in ("--key", "--pass"):
        parsed.credentials.append(NETRC_NOT_COPIED.format(option=option))
    elif option == "--form":
        raise CurlImportError(
            UNSUPPORTED_OPTION.format(option="-F/--form", reason="a step sends JSON, not multipart")
        )
    elif option == "--upload-file":
        raise CurlImportError(READS_FILE.format(option="-T/--upload-file"))
    elif option in _PROXY_OPTIONS:
        parsed.warnings.append(PROXY_IGNORED.format(option=option))
    elif option in _IGNORED_VALUE_OPTIONS:
        parsed.warnings.append(OPTION_IGNORED.format(option=_short_long(option)))


def _apply_flag(parsed: _Parsed, option: str) -> None:
    if option == "--get":
        parsed.get = True
    elif option == "--head":
        parsed.head = True
    elif option == "--insecure":
        parsed.warnings.append(INSECURE_IGNORED)
    elif option in ("--location", "--location-trusted"):
        if REDIRECTS_IGNORED not in parsed.warnings:
            parsed.warnings.append(REDIRECTS_IGNORED)
    elif option in ("--netrc", "--netrc-optional"):
        parsed.credentials.append(NETRC_NOT_COPIED.format(option=_short_long(option)))
    elif option not in _HARMLESS_FLAGS:
        parsed.unknown.append(option[:_NAME_LIMIT])
        parsed.warnings.append(OPTION_IGNORED.format(option=option[:_NAME_LIMIT]))


def _short_long(option: str) -> str:
    short = next((s for s, long in _VALUE_ALIASES.items() if long == option), None)
    short = short or next((s for s, long in _FLAG_ALIASES.items() if long == option), None)
    return f"{short}/{option}" if short else option


def _data_value(option: str, value: str) -> str:
    if option == "--data-raw":
        return value
    if option == "--data-urlencode":
        # curl's forms: "content", "=content", "name=content", "@file", "name@file".
        equals, at = value.find("="), value.find("@")
        if at != -1 and (equals == -1 or at < equals):
            raise CurlImportError(READS_FILE.format(option=option))
        if equals == -1:
            return quote(value, safe="")
        return value[:equals] + ("=" if equals else "") + quote(value[equals + 1 :], safe="")
    if value.startswith("@"):
        raise CurlImportError(READS_FILE.format(option=_short_long(option)))
    return value


def _joined_data(parsed: _Parsed) -> str:
    # curl joins -d parts with "&" and appends --json parts as they are.
    text = ""
    for option, value in parsed.data:
        separator = "" if option == "--json" or not text else "&"
        text += separator + value
    return text


def _split_url(raw: str):
    text = raw if "://" in raw else "https://" + raw
    try:
        url = urlsplit(text)
        url.port  # noqa: B018 -- reading it validates the port
    except ValueError:
        raise CurlImportError(BAD_URL) from None
    if url.scheme.lower() not in ("http", "https"):
        raise CurlImportError(UNSUPPORTED_SCHEME.format(scheme=url.scheme[:_NAME_LIMIT]))
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
        result.credentials.append(QUERY_NOT_COPIED.format(name=key[:_NAME_LIMIT]))
        return
    result.query.append({"key": cel_string_literal(key), "value": cel_string_literal(value)})


def _add_headers(result: CurlImport, parsed: _Parsed) -> str:
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
        shown = name[:_NAME_LIMIT]
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
                result.credentials.append(FORM_FIELD_NOT_COPIED.format(name=name[:_NAME_LIMIT]))
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
            result.credentials.append(FORM_FIELD_NOT_COPIED.format(name=name[:_NAME_LIMIT]))
            continue
        if name not in values:
            values[name] = value
            continue
        # A repeated field ("tags=a&tags=b") keeps every value, in order.
        previous = values[name]
        values[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
    result.warnings.append(FORM_BODY_AS_JSON)
    # The form's Content-Type would now mislabel a JSON body.
    result.headers = [row for row in result.headers if row["key"].lower() != '"content-type"']
    return json.dumps(values, indent=2, ensure_ascii=False)
