"""Secrets are masked in every spelling an API may echo them in, even cut off half-way."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from werkzeug import Request, Response

from cloudfunctions.http.redaction import MASK, Redactor
from cloudfunctions.step.execution import cloud_function_execute
from tests.cloudfunctions.factories import MARKERS, ApiKeyConnectionFactory, CloudFunctionFactory

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
