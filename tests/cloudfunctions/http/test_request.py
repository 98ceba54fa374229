from __future__ import annotations

import dataclasses

import pytest

from cloudfunctions.http.request import OutboundRequest

SECRET = "SECRET-MARKER-apikey-7f3a"


def test_a_request_cannot_be_changed_in_place():
    request = OutboundRequest("get", "https://api.example.com/x", headers={"A": "1"})

    with pytest.raises(dataclasses.FrozenInstanceError):
        request.url = "https://evil.example/"  # type: ignore[misc]
    with pytest.raises(TypeError):
        request.headers["B"] = "2"  # type: ignore[index]
    assert request.method == "GET"


def test_headers_are_replaced_whatever_their_case():
    request = OutboundRequest("GET", "https://a.example/", headers={"x-api-key": "designer"})

    changed = request.with_header("X-Api-Key", SECRET)

    assert dict(changed.headers) == {"X-Api-Key": SECRET}
    assert dict(request.headers) == {"x-api-key": "designer"}
    assert dict(changed.without_headers("x-API-key").headers) == {}


@pytest.mark.parametrize(
    ("method", "body", "length"),
    [("POST", b"abc", "3"), ("PUT", None, "0"), ("GET", None, None), ("GET", b"", "0")],
)
def test_framing_sets_the_length_that_is_sent(method, body, length):
    request = OutboundRequest(
        method, "https://a.example/", headers={"content-length": "99"}, body=body
    )

    framed = request.framed()

    assert dict(framed.headers).get("Content-Length") == length
    assert framed.framed() == framed


def test_the_body_is_bytes():
    with pytest.raises(TypeError):
        OutboundRequest("POST", "https://a.example/", body="text")  # type: ignore[arg-type]


def test_repr_shows_no_query_or_header_values():
    request = OutboundRequest("GET", f"https://a.example/x?key={SECRET}", headers={"K": SECRET})

    assert SECRET not in repr(request)
