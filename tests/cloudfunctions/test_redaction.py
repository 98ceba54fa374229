"""Secrets are masked in every spelling an API may echo them in, even cut off half-way."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from werkzeug import Request, Response

from cloudfunctions.execution import cloud_function_execute
from cloudfunctions.redaction import MASK, Redactor
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


@pytest.mark.django_db
def test_a_response_cut_inside_an_echoed_key_shows_none_of_it(
    outbound_tls, tls_httpserver, settings
):
    key = MARKERS["api_key_value"]
    connection = ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/api").rstrip("/"))

    def echo(request: Request) -> Response:
        return Response("x" * 990 + request.headers["X-API-Key"], content_type="text/plain")

    tls_httpserver.expect_request("/api/v1/x").respond_with_handler(echo)
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 1000  # the cut falls inside the key
    cf = CloudFunctionFactory(connection=connection, method="GET", uri='"/v1/x"', body="")

    result = cloud_function_execute(cloud_function=cf, context={})

    assert result.payload["truncated"] is True
    assert result.payload["body"] == "x" * 990 + MASK
    assert key[:10] not in str(result.payload)


def test_the_longest_start_at_a_cut_is_masked_whichever_spelling_it_belongs_to():
    # The base64 spelling is the longest and checked first; a shorter start of it must not
    # stop the search before the longer start of the secret itself.
    secret = "abcdefghYWJj-more"
    redact = Redactor([secret])
    assert redact.cut_text("id: " + secret[:12]) == "id: " + MASK


@pytest.mark.django_db
def test_a_cut_inside_a_character_still_masks_the_secret_before_it(
    outbound_tls, tls_httpserver, settings
):
    key = MARKERS["api_key_value"]
    connection = ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/api").rstrip("/"))

    def echo(request: Request) -> Response:
        # The cap falls inside "é" (two bytes), right after the first half of the key.
        half = request.headers["X-API-Key"][:12]
        return Response(("x" * (999 - 12 - 1)) + half + "é", content_type="text/plain")

    tls_httpserver.expect_request("/api/v1/x").respond_with_handler(echo)
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 999
    cf = CloudFunctionFactory(connection=connection, method="GET", uri='"/v1/x"', body="")

    result = cloud_function_execute(cloud_function=cf, context={})

    assert result.payload["body"] == "x" * 986 + MASK
    assert key[:8] not in str(result.payload)
