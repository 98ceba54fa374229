"""Secrets are masked in every spelling an API may echo them in, even cut off half-way."""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from werkzeug import Request, Response

from cloudfunctions.http.redaction import MASK, Redactor
from cloudfunctions.step.execution import cloud_function_execute
from tests.factories import MARKERS, ApiKeyConnectionFactory, CloudFunctionFactory
from tests.security.spellings import as_text, leaks

SECRET = "sk/live+Zq9=äb"


@pytest.mark.parametrize(
    "spelling",
    [
        SECRET,
        quote(SECRET, safe=""),
        # Escapes are case-insensitive; encoders write them all upper or all lower case.
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(SECRET, safe="")),
    ],
)
def test_each_spelling_is_masked(spelling):
    assert Redactor([SECRET]).text(f"echo={spelling};") == f"echo={MASK};"


def test_the_start_of_a_secret_at_a_cut_is_masked():
    redact = Redactor([SECRET])
    assert redact.cut_text("token: " + SECRET[:6]) == "token: " + MASK
    assert redact.cut_text("whole " + SECRET + " and sk/l") == f"whole {MASK} and {MASK}"
    assert redact.cut_text("ends in sk/") == "ends in sk/"  # three characters tell little


def _echo_then(tail: str):
    """An answer of x's, the request's API key (or its first 12 characters), then tail."""

    def echo(request: Request) -> Response:
        key = request.headers["X-API-Key"]
        return Response(
            "x" * 986 + (key if not tail else key[:12] + tail), content_type="text/plain"
        )

    return echo


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tail, cap",
    [
        ("", 1000),  # the cap falls inside the key
        ("é", 999),  # the cap falls inside "é" (two bytes), right after half the key
    ],
)
def test_a_response_cut_near_an_echoed_key_shows_none_of_it(
    outbound_tls, tls_httpserver, settings, tail, cap
):
    key = MARKERS["api_key_value"]
    connection = ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/api").rstrip("/"))
    tls_httpserver.expect_request("/api/v1/x").respond_with_handler(_echo_then(tail))
    settings.OUTBOUND_MAX_RESPONSE_BYTES = cap
    cf = CloudFunctionFactory(connection=connection, method="GET", uri='"/v1/x"', body="")

    result = cloud_function_execute(cloud_function=cf, context={})

    assert result.payload["truncated"] is True
    assert result.payload["body"] == "x" * 986 + MASK
    assert key[:8] not in str(result.payload)


def test_the_longest_start_at_a_cut_is_masked_whichever_spelling_it_belongs_to():
    # The base64 spelling is the longest and checked first; a shorter start of it must not
    # stop the search before the longer start of the secret itself.
    secret = "abcdefghYWJj-more"
    redact = Redactor([secret])
    assert redact.cut_text("id: " + secret[:12]) == "id: " + MASK


# Issue 13: S2 (escaped spellings), S3 (base64 at any offset, hex), S4 (numbers).

# Characters every escaping scheme rewrites: percent, JSON, HTML.
S2_SECRET = "sk/live <&>\"'Zq9+ä"
S2_SPELLINGS = {
    "JSON with \\/ escapes": json.dumps(S2_SECRET).replace("/", "\\/"),
    "JSON, ASCII only": json.dumps(S2_SECRET, ensure_ascii=True),
    "JSON, every character \\u": "".join(f"\\u{ord(c):04X}" for c in S2_SECRET),
    "HTML": html.escape(S2_SECRET),
    "HTML, &#039;": html.escape(S2_SECRET).replace("&#x27;", "&#039;"),
    "HTML, decimal entities": "".join(f"&#{ord(c)};" for c in S2_SECRET),
    "JSON in HTML": html.escape(json.dumps(S2_SECRET)),
    "form, + for space": quote_plus(S2_SECRET),
}


@pytest.mark.parametrize("name", S2_SPELLINGS)
def test_s2_escaped_spellings_are_masked(name):
    masked = Redactor([S2_SECRET]).text(f"<p>echo: {S2_SPELLINGS[name]}</p>")
    assert MASK in masked
    assert not leaks(masked, S2_SECRET)


@given(
    prefix=st.text("xy0/+", max_size=5),
    suffix=st.text("xyz", max_size=5),
    urlsafe=st.booleans(),
    padded=st.booleans(),
)
@hypothesis_settings(max_examples=60, deadline=None, derandomize=True)
def test_s3_base64_at_any_offset_inside_a_longer_run_is_masked(prefix, suffix, urlsafe, padded):
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    encoded = encode(f"GET /?{prefix}{SECRET}{suffix} HTTP/1.1".encode()).decode()
    encoded = encoded if padded else encoded.rstrip("=")
    masked = Redactor([SECRET]).text(f"dump={encoded}")
    assert MASK in masked
    # What is left around the mask decodes to no more than a few bits of the secret.
    for offset in range(3):
        run = encode(bytes(offset) + SECRET.encode()).decode()
        assert run[4:-4] not in masked


@pytest.mark.parametrize("spell", [binascii.hexlify, lambda b: binascii.hexlify(b).upper()])
def test_s3_hex_is_masked(spell):
    echoed = spell(f"x{SECRET}y".encode()).decode()
    assert echoed[4:-4] not in Redactor([SECRET]).text(echoed)


@pytest.mark.parametrize(
    "answer",
    [
        {"key": 4815162342},
        {"key": 4815162342.0},
        {"key": [1, {"deep": 4815162342}]},
        {"key": "4815162342"},
    ],
)
def test_s4_a_numeric_secret_echoed_as_a_json_number_is_masked(answer):
    masked = Redactor(["4815162342"])(answer)
    assert "4815162342" not in json.dumps(masked)
    assert MASK in json.dumps(masked, ensure_ascii=False)


def test_s4_other_numbers_are_kept():
    answer = {"status": 200, "amount": 4815162341, "ratio": 0.5, "flag": True}
    assert Redactor(["4815162342"])(answer) == answer


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", json.dumps({"echo": SECRET}).replace("/", "\\/")),
        ("text/plain", '{"n": 48151623420000000000}'),
        ("application/json", json.dumps({"pad": "x" * 900, "echo": SECRET + "/" * 300})),
    ],
    ids=["JSON as text/plain", "a number as text/plain JSON", "application/json over the cap"],
)
def test_s2_json_as_text_and_cut_json_are_masked(
    outbound_tls, tls_httpserver, settings, content_type, body
):
    secret = "48151623420000000000" if "n" in json.loads(body) else SECRET
    tls_httpserver.expect_request("/api/x").respond_with_data(body, content_type=content_type)
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 1000
    connection = ApiKeyConnectionFactory(
        base_url=tls_httpserver.url_for("/api").rstrip("/"),
        api_key_location="query",
        api_key_value=secret,
    )
    cf = CloudFunctionFactory(connection=connection, method="GET", uri='"/x"', body="")
    result = cloud_function_execute(cloud_function=cf, context={})
    assert not leaks(as_text(result.payload["body"]), secret)
