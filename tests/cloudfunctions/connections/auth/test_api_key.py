from __future__ import annotations

from werkzeug import Request, Response

from cloudfunctions.connections.auth.api_key import ApiKeyAuth
from cloudfunctions.http.transport import OutboundRequest, send

MARKER = "SECRET-MARKER-apikey-7f3a"


def host_of(server) -> str:
    return f"127.0.0.1:{server.port}"


def test_a_header_key_reaches_the_server(outbound_tls, tls_httpserver):
    tls_httpserver.expect_request("/v1/items", headers={"X-Api-Key": MARKER}).respond_with_data(
        "ok"
    )
    auth = ApiKeyAuth(name="X-Api-Key", value=MARKER, location="header")
    request = OutboundRequest(
        "GET", tls_httpserver.url_for("/v1/items"), headers={"x-api-key": "designer"}
    )

    response = send(auth.apply(request), allowed_hosts={host_of(tls_httpserver)})

    assert response.status == 200


def test_a_query_key_is_percent_encoded_and_replaces_a_designer_parameter(
    outbound_tls, tls_httpserver
):
    value = f"{MARKER} &=+/?é%"
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response("ok")

    tls_httpserver.expect_request("/v1/items").respond_with_handler(handler)
    auth = ApiKeyAuth(name="api key", value=value, location="query")
    request = OutboundRequest(
        "GET", tls_httpserver.url_for("/v1/items") + "?api%20key=designer&q=a%20b"
    )

    response = send(auth.apply(request), allowed_hosts={host_of(tls_httpserver)})

    assert response.status == 200
    (received,) = seen
    assert received.args.getlist("api key") == [value]
    assert received.args["q"] == "a b"
    assert b"api%20key=SECRET-MARKER-apikey-7f3a%20%26%3D%2B%2F%3F%C3%A9%25" in (
        received.query_string
    )


def test_the_key_is_a_secret_and_stays_out_of_repr():
    auth = ApiKeyAuth(name="key", value=MARKER, location="query")

    assert auth.secrets() == [MARKER]
    assert MARKER not in repr(auth)
    assert auth.renew() is False
