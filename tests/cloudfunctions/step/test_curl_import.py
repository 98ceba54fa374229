"""Import cURL: pasted commands become CEL fields, and credentials never come along."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cloudfunctions import cel
from cloudfunctions.step import curl_import as curl_import_module
from cloudfunctions.step.curl_import import (
    MAX_COMMAND_BYTES,
    CurlImport,
    CurlImportError,
    curl_import,
)
from cloudfunctions.step.curl_messages import (
    BEARER_NOT_COPIED,
    BODY_NOT_JSON,
    COMMAND_TOO_LONG,
    COOKIES_NOT_COPIED,
    FORM_BODY_AS_JSON,
    FORM_FIELD_NOT_COPIED,
    HEADER_DROPPED,
    HEADER_IGNORED,
    HEADER_NOT_COPIED,
    HOST_DIFFERS,
    IDEMPOTENCY_KEY_DROPPED,
    INSECURE_IGNORED,
    NO_URL,
    NOT_CURL,
    OPTION_IGNORED,
    PATH_OUTSIDE_BASE,
    QUERY_NOT_COPIED,
    READS_FILE,
    REDIRECTS_IGNORED,
    REST_IGNORED,
    SEVERAL_URLS,
    SEVERAL_URLS_AFTER_UNKNOWN,
    SIGNING_HEADER_NOT_COPIED,
    SIGNING_NOT_COPIED,
    UNBALANCED_QUOTES,
    UNSUPPORTED_METHOD,
    URL_USER_NOT_COPIED,
    USER_NOT_COPIED,
)
from cloudfunctions.step.curl_words import shell_words

SECRET = "SECRET-MARKER-curl-5f31"
SEED = (
    "curl -X POST https://api.example.com/v1/charges?environment=production "
    "-H 'Content-Type: application/json' "
    f"-H 'x-api-key: 7940{SECRET}' "
    """-d '{"customer_name": "John Doe"}'"""
)


def value(expression: str):
    """Evaluate a constant CEL expression the way the editor would check it."""
    assert cel.check_expression(expression) == [], expression
    return cel.constant_value(expression)


def rows(result_rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(value(row["key"]), value(row["value"])) for row in result_rows]


def test_seed_example_keeps_the_request_and_drops_the_api_key():
    result = curl_import(SEED, base_url="https://api.example.com")

    assert result.method == "POST"
    assert result.uri == '"/v1/charges"'
    assert result.query == [{"key": '"environment"', "value": '"production"'}]
    assert rows(result.headers) == [("Content-Type", "application/json")]
    assert json.loads(result.body) == {"customer_name": "John Doe"}
    assert result.body == '{\n  "customer_name": "John Doe"\n}'
    assert result.credentials == [HEADER_NOT_COPIED.format(name="x-api-key")]
    assert result.warnings == []
    assert SECRET not in repr(result)


def test_uri_is_relative_to_the_base_path():
    result = curl_import(SEED, base_url="https://API.example.com:443/v1/")

    assert value(result.uri) == "/charges"
    assert result.warnings == []


def test_the_base_url_itself_becomes_slash():
    result = curl_import("curl https://api.example.com/v1", base_url="https://api.example.com/v1")

    assert value(result.uri) == "/"


def test_another_host_keeps_the_whole_path_with_a_warning():
    result = curl_import(SEED, base_url="https://other.example.com/v1")

    assert value(result.uri) == "/v1/charges"
    assert result.warnings == [
        HOST_DIFFERS.format(origin="https://api.example.com", base="https://other.example.com")
    ]


def test_a_path_outside_the_base_path_is_kept_with_a_warning():
    result = curl_import("curl https://api.example.com/v2/x", base_url="https://api.example.com/v1")

    assert value(result.uri) == "/v2/x"
    assert result.warnings == [PATH_OUTSIDE_BASE.format(base_path="/v1")]


def test_without_a_connection_the_path_is_kept_silently():
    result = curl_import("curl api.example.com/v1/x?a=1", base_url=None)

    assert (result.method, value(result.uri), rows(result.query)) == ("GET", "/v1/x", [("a", "1")])
    assert result.warnings == []


def test_multi_line_command_with_continuations():
    command = (
        "curl --request PATCH \\\n"
        "  --url 'https://api.example.com/v1/customers/cus_1?expand=sources&expand=tax' \\\r\n"
        "  --header 'Accept: application/json' \\\n"
        """  --data '{"name": "Jo", "tags": ["a"]}'\n"""
    )
    result = curl_import(command, base_url="https://api.example.com/v1")

    assert result.method == "PATCH"
    assert value(result.uri) == "/customers/cus_1"
    assert rows(result.query) == [("expand", "sources"), ("expand", "tax")]
    assert rows(result.headers) == [("Accept", "application/json")]
    assert json.loads(result.body) == {"name": "Jo", "tags": ["a"]}


def test_quotes_and_backslashes_in_values_make_valid_cel():
    command = (
        """curl "https://x.example/p?q=say%20%22hi%22%5C" """
        """-H 'X-Note: he said "hi" \\ bye' -H "X-Quote: it's" """
    )
    result = curl_import(command, base_url=None)

    assert rows(result.query) == [("q", 'say "hi"\\')]
    assert rows(result.headers) == [("X-Note", 'he said "hi" \\ bye'), ("X-Quote", "it's")]


def test_browser_ansi_c_quoted_body():
    command = (
        "curl 'https://x.example/a' -H 'content-type: application/json' "
        """--data-raw $'{"note":"it\\'s caf\\u00e9\\\\n"}' --compressed"""
    )
    result = curl_import(command, base_url=None)

    assert json.loads(result.body) == {"note": "it's café\n"}
    assert result.warnings == []


@pytest.mark.parametrize(
    ("command", "method", "body"),
    [
        ("curl https://x.example/a", "GET", ""),
        ("curl -d '{}' https://x.example/a", "POST", "{}"),
        ("curl -XPUT -d '[1]' https://x.example/a", "PUT", "[\n  1\n]"),
        ("curl -X delete https://x.example/a", "DELETE", ""),
        ("curl -G -d a=1 https://x.example/a", "GET", ""),
        ("curl -X POST -G -d a=1 https://x.example/a", "POST", ""),
        ("curl --data-binary '{\"a\": 1}' https://x.example/a", "POST", '{\n  "a": 1\n}'),
    ],
)
def test_method_and_body(command, method, body):
    result = curl_import(command, base_url=None)

    assert (result.method, result.body) == (method, body)


def test_json_option_implies_post_and_json_headers():
    result = curl_import("""curl --json '{"a": 1}' https://x.example/a""", base_url=None)

    assert result.method == "POST"
    assert rows(result.headers) == [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ]
    assert json.loads(result.body) == {"a": 1}


def test_json_option_keeps_the_commands_own_accept():
    command = """curl --json '{}' -H 'Accept: text/plain' https://x.example/a"""
    result = curl_import(command, base_url=None)

    assert rows(result.headers) == [("Accept", "text/plain"), ("Content-Type", "application/json")]


def test_get_moves_data_into_the_query_after_the_urls_own():
    command = "curl -G 'https://x.example/s?a=1' -d b=2 --data-urlencode 'q=x y&z' -d c"
    result = curl_import(command, base_url=None)

    assert result.method == "GET"
    assert rows(result.query) == [("a", "1"), ("b", "2"), ("q", "x y&z"), ("c", "")]
    assert result.body == ""


def test_stripe_like_form_post_becomes_a_json_object_and_drops_the_key():
    command = (
        f"curl https://api.stripe.com/v1/charges -u {SECRET}: "
        "-d amount=2000 -d currency=usd -d 'description=Tea for two' "
        "-d 'metadata[order]=6735' -d tags=a -d tags=b"
    )
    result = curl_import(command, base_url="https://api.stripe.com")

    assert result.method == "POST"
    assert value(result.uri) == "/v1/charges"
    assert json.loads(result.body) == {
        "amount": "2000",
        "currency": "usd",
        "description": "Tea for two",
        "metadata[order]": "6735",
        "tags": ["a", "b"],
    }
    assert result.warnings == [FORM_BODY_AS_JSON]
    assert result.credentials == [USER_NOT_COPIED.format(option="-u/--user")]
    assert SECRET not in repr(result)


def test_form_content_type_is_dropped_when_the_form_becomes_json():
    command = (
        "curl https://x.example/token -H 'Content-Type: application/x-www-form-urlencoded' "
        f"-H 'Accept: application/json' -d grant_type=client_credentials -d client_secret={SECRET}"
    )
    result = curl_import(command, base_url=None)

    assert rows(result.headers) == [("Accept", "application/json")]
    assert json.loads(result.body) == {"grant_type": "client_credentials"}
    assert result.credentials == [FORM_FIELD_NOT_COPIED.format(name="client_secret")]
    assert SECRET not in repr(result)


@pytest.mark.parametrize(
    "command",
    [
        "curl -d 'just text' https://x.example/a",
        "curl -H 'Content-Type: text/plain' -d 'a=1' https://x.example/a",
        "curl --json '{broken' https://x.example/a",
    ],
)
def test_body_that_is_not_json_is_kept_as_written_with_a_warning(command):
    result = curl_import(command, base_url=None)

    assert result.body in ("just text", "a=1", "{broken")
    assert result.warnings == [BODY_NOT_JSON]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (f"-H 'Authorization: Bearer {SECRET}'", HEADER_NOT_COPIED.format(name="Authorization")),
        (f"-H 'X-Api-Key: {SECRET}'", HEADER_NOT_COPIED.format(name="X-Api-Key")),
        (f"-H 'Api-Key: {SECRET}'", HEADER_NOT_COPIED.format(name="Api-Key")),
        (f"-H 'X-Auth-Token: {SECRET}'", HEADER_NOT_COPIED.format(name="X-Auth-Token")),
        (f"-H 'X-Client-Secret: {SECRET}'", HEADER_NOT_COPIED.format(name="X-Client-Secret")),
        (f"-H 'Cookie: sid={SECRET}'", HEADER_NOT_COPIED.format(name="Cookie")),
        (
            f"-H 'Proxy-Authorization: {SECRET}'",
            HEADER_NOT_COPIED.format(name="Proxy-Authorization"),
        ),
        (
            f"-H 'X-Amz-Security-Token: {SECRET}'",
            SIGNING_HEADER_NOT_COPIED.format(name="X-Amz-Security-Token"),
        ),
        (f"-u 'me:{SECRET}'", USER_NOT_COPIED.format(option="-u/--user")),
        (f"--user {SECRET}", USER_NOT_COPIED.format(option="-u/--user")),
        (f"-b 'session={SECRET}'", COOKIES_NOT_COPIED.format(option="-b/--cookie")),
        (f"--cookie 'session={SECRET}'", COOKIES_NOT_COPIED.format(option="-b/--cookie")),
        (f"--oauth2-bearer {SECRET}", BEARER_NOT_COPIED.format(option="--oauth2-bearer")),
        ("--aws-sigv4 aws:amz:us-east-1:connect", SIGNING_NOT_COPIED.format(option="--aws-sigv4")),
    ],
)
def test_credentials_are_flagged_by_name_never_by_value(option, message):
    result = curl_import(
        f"curl https://x.example/a {option} -H 'Accept: */*'", base_url="https://x.example"
    )

    assert result.credentials == [message]
    assert rows(result.headers) == [("Accept", "*/*")]
    assert SECRET not in repr(result)


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apikey",
        "apiKey",
        "key",
        "token",
        "access_token",
        "secret",
        "client_secret",
        "signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "sig",
    ],
)
def test_credential_query_parameters_are_flagged(name):
    result = curl_import(f"curl 'https://x.example/a?{name}={SECRET}&page=2'", base_url=None)

    assert result.credentials == [QUERY_NOT_COPIED.format(name=name)]
    assert rows(result.query) == [("page", "2")]
    assert SECRET not in repr(result)


def test_ordinary_names_with_key_like_parts_are_kept():
    result = curl_import("curl 'https://x.example/a?sortKey=name&monkey=1'", base_url=None)

    assert rows(result.query) == [("sortKey", "name"), ("monkey", "1")]
    assert result.credentials == []


def test_user_info_in_the_url_is_flagged_and_dropped():
    result = curl_import(f"curl https://me:{SECRET}@x.example/a", base_url="https://x.example")

    assert result.credentials == [URL_USER_NOT_COPIED]
    assert result.warnings == []
    assert SECRET not in repr(result)


def test_headers_the_transport_sets_are_dropped_with_a_warning():
    command = (
        "curl https://x.example/a -H 'Host: evil.example' -H 'Content-Length: 3' "
        "-H 'Idempotency-Key: k1' -H 'X-Empty;' -H 'User-Agent:' -A 'tool/1'"
    )
    result = curl_import(command, base_url=None)

    assert rows(result.headers) == [("X-Empty", ""), ("User-Agent", "tool/1")]
    assert result.warnings == [
        HEADER_DROPPED.format(name="Host"),
        HEADER_DROPPED.format(name="Content-Length"),
        IDEMPOTENCY_KEY_DROPPED,
    ]


def test_harmless_flags_are_ignored_and_risky_ones_warn():
    command = "curl -sSLk -v -i --compressed --fail https://x.example/a --frobnicate"
    result = curl_import(command, base_url=None)

    assert result.method == "GET"
    assert result.warnings == [
        REDIRECTS_IGNORED,
        INSECURE_IGNORED,
        OPTION_IGNORED.format(option="--frobnicate"),
    ]


def test_a_header_without_a_colon_is_ignored_without_echoing_it():
    result = curl_import(f"curl https://x.example/a -H 'Authorization {SECRET}'", base_url=None)

    assert result.headers == []
    assert result.warnings == [HEADER_IGNORED]
    assert SECRET not in repr(result)


def test_pipes_after_the_command_are_ignored():
    result = curl_import("$ curl -s https://x.example/a | jq .", base_url=None)

    assert value(result.uri) == "/a"
    assert result.warnings == [REST_IGNORED.format(token="|")]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("", "Paste a curl command."),
        ("   \n ", "Paste a curl command."),
        ("wget https://x.example", NOT_CURL),
        ("curl -s -H 'Accept: */*'", NO_URL),
        ("curl https://x.example/a https://x.example/b", SEVERAL_URLS),
        ("curl -X HEAD https://x.example/a", UNSUPPORTED_METHOD.format(method="HEAD")),
        ("curl -d @body.json https://x.example/a", READS_FILE.format(option="-d/--data")),
        ("curl -H", "The option -H needs a value."),
        (
            "curl --frob 3 https://x.example/a",
            SEVERAL_URLS_AFTER_UNKNOWN.format(option="--frob"),
        ),
        (
            "curl -H 'Accept: */*' -H @headers.txt https://x.example/a",
            READS_FILE.format(option="-H/--header"),
        ),
        (
            "curl --data-urlencode 'q@query.txt' https://x.example/a",
            READS_FILE.format(option="--data-urlencode"),
        ),
    ],
)
def test_errors_have_clear_messages(command, message):
    with pytest.raises(CurlImportError) as caught:
        curl_import(command, base_url=None)

    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ("curl 'https://x.example/a", "unclosed quote"),
        ('curl -d "{" https://x.example/a \\', "unclosed quote"),
        ("curl -I https://x.example/a", "HEAD"),
        ("curl -F file=@a.png https://x.example/a", "multipart"),
        ("curl ftp://x.example/a", "ftp"),
    ],
)
def test_unsupported_commands_are_refused(command, fragment):
    with pytest.raises(CurlImportError, match=fragment):
        curl_import(command, base_url=None)


def test_result_is_a_plain_dataclass():
    result = curl_import("curl https://x.example/a", base_url=None)

    assert result == CurlImport(method="GET", uri='"/a"')


def test_credentials_in_a_json_body_are_not_copied():
    from cloudfunctions.step.curl_import import curl_import as run_import

    result = run_import(
        """curl https://api.example.com/v1/x -d '{"client_secret": "s3cr3t-value", "name": "a"}'""",
        base_url="https://api.example.com",
    )
    assert "s3cr3t-value" not in repr(result)
    assert '"name": "a"' in result.body and any("client_secret" in c for c in result.credentials)


def test_a_deeply_nested_body_is_kept_as_text():
    from cloudfunctions.step.curl_import import curl_import as run_import

    body = "[" * 5000 + "]" * 5000
    result = run_import(f"curl https://api.example.com/x -d '{body}'", base_url=None)
    assert result.body == body


@pytest.mark.parametrize(
    "command",
    [
        "curl -H $'X-A: \\ud800' https://api.example.com/x",
        "curl --data-raw $'\\ud800' https://api.example.com/x",
        "curl --data-urlencode $'a=\\ud800' https://api.example.com/x",
    ],
)
def test_a_lone_surrogate_escape_becomes_a_replacement_character(command):
    imported = curl_import(command, base_url=None)
    texts = json.dumps([imported.headers, imported.body, imported.query], ensure_ascii=False)
    assert "\ufffd" in texts
    texts.encode()  # no lone surrogate is left: encoding one raises


# Work grows with the command, never with its square (issue 13, D7: a 2 MB command once took
# 50 s of CPU). Each shape repeats one awkward piece, so doubling the command doubles it.
SHAPES = {
    "headers": lambda k: (
        "curl https://x.example/a " + " ".join(f"-H 'X-N{i}: v'" for i in range(k))
    ),
    "repeated form field": lambda k: "curl https://x.example/a " + " -d tag=v" * k,
    "form fields": lambda k: "curl https://x.example/a " + " ".join(f"-d f{i}=v" for i in range(k)),
    "one long body": lambda k: "curl https://x.example/a -d '" + "x" * (10 * k) + "'",
    "double quotes": lambda k: 'curl https://x.example/a -d "' + '\\"a' * k + '"',
    "ANSI-C escapes": lambda k: "curl https://x.example/a --data-raw $'" + "\\n\\x41" * k + "'",
    "ANSI-C words": lambda k: "curl https://x.example/a" + " -d $'a'" * k,
    "query": lambda k: "curl 'https://x.example/a?" + "&".join(f"a{i}=1" for i in range(k)) + "'",
    "short flags": lambda k: "curl https://x.example/a -" + "s" * (10 * k),
    "warnings": lambda k: "curl https://x.example/a" + "".join(f" --z{i} -L" for i in range(k)),
    "continuations": lambda k: "curl https://x.example/a" + " \\\n -s" * k,
    "json parts": lambda k: "curl https://x.example/a" + " --json '[1]'" * k,
    "unclosed ANSI-C": lambda k: "curl https://x.example/a " + "$'" * k,
    "urls": lambda k: "curl" + " x.example/a" * k,
}


def _opcodes(function) -> int:
    """Count the bytecode instructions `function` executes, in every frame it enters."""
    count = 0

    def trace(frame, event, arg):
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        function()
    finally:
        sys.settrace(None)
    return count


def _import_quietly(command: str) -> None:
    with contextlib.suppress(CurlImportError):
        curl_import(command, base_url="https://x.example")


@pytest.mark.parametrize("shape", SHAPES)
def test_import_work_is_linear_in_the_command(shape):
    small, large = SHAPES[shape](300), SHAPES[shape](1200)
    assert len(large) <= MAX_COMMAND_BYTES
    work = [
        _opcodes(lambda command=command: _import_quietly(command)) for command in (small, large)
    ]
    # Four times the command: a linear import does at most about four times the work (fixed
    # costs make it less); a quadratic one would do sixteen.
    assert work[1] <= 4.5 * work[0], work


@pytest.mark.parametrize("shape", ["query", "repeated form field", "one long body", "warnings"])
def test_a_megabyte_command_is_read_in_linear_time(shape, monkeypatch):
    # String copies inside C (shlex grew each word one character at a time) cost no bytecode,
    # so they are bounded by CPU time here: 11-16 s for 1 MB before, under a second now.
    monkeypatch.setattr(curl_import_module, "MAX_COMMAND_BYTES", 4 * 1024 * 1024)
    piece = len(SHAPES[shape](65)) - len(SHAPES[shape](64))
    command = SHAPES[shape](1024 * 1024 // piece)
    assert len(command) >= 1000 * 1000
    started = time.process_time()
    _import_quietly(command)
    assert time.process_time() - started < 5  # generous: about 0.5 s here


def test_a_command_at_the_size_cap_is_imported_and_one_byte_more_is_refused():
    head = "curl https://x.example/a -d '"
    body = "x" * (MAX_COMMAND_BYTES - len(head) - 1)
    command = head + body + "'"
    assert len(command.encode()) == MAX_COMMAND_BYTES
    started = time.process_time()
    assert curl_import(command, base_url=None).body == body
    assert time.process_time() - started < 2  # generous: a few milliseconds here

    with pytest.raises(CurlImportError) as caught:
        curl_import(head + body + "x'", base_url=None)
    assert str(caught.value) == COMMAND_TOO_LONG.format(limit=64)


def test_the_size_cap_counts_bytes_not_characters():
    head = "curl https://x.example/a -d '"
    command = head + "é" * ((MAX_COMMAND_BYTES - len(head)) // 2 + 1) + "'"
    assert len(command) < MAX_COMMAND_BYTES < len(command.encode())
    with pytest.raises(CurlImportError, match="longer than 64 KB"):
        curl_import(command, base_url=None)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.text(alphabet="ab $#|'\"\\ \t\r\n\x0b", max_size=30))
def test_words_are_split_as_shlex_splits_them(text):
    # Differential: the linear splitter reads what shlex (quadratic on long words) read, except
    # where it knows more: $'...', continuations and a leading "$ " prompt.
    assume(text.strip() and "$'" not in text and "\\\n" not in text and "\\\r\n" not in text)
    assume(not text.lstrip().startswith("$"))
    try:
        expected = shlex.split(text)
    except ValueError as error:
        expected = UNBALANCED_QUOTES.format(detail=str(error).lower())
    try:
        words = shell_words(text)
    except CurlImportError as error:
        words = str(error)
    assert words == expected
