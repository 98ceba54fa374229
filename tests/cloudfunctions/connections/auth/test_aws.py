from __future__ import annotations

import json
import re
from urllib.parse import quote, urlencode

import pytest
from werkzeug import Request, Response

from cloudfunctions import amazon_connect
from cloudfunctions.connections.auth import AuthError
from cloudfunctions.connections.auth.aws import (
    AwsSigV4Auth,
    is_reserved_header,
)
from cloudfunctions.http import errors
from cloudfunctions.http.transport import OutboundRequest, send
from tests.sigv4 import signature_as_aws_computes_it

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "SECRET-MARKER-aws-5d0c"


def host_of(server) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def verifying_server(tls_httpserver):
    """Answer 200 when the received request's signature is right, 403 otherwise."""
    received: list[Request] = []

    def handler(request: Request) -> Response:
        received.append(request)
        claimed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
        ok = claimed == signature_as_aws_computes_it(request, SECRET_KEY)
        return Response("signed" if ok else "bad signature", 200 if ok else 403)

    tls_httpserver.expect_request(re.compile(".*")).respond_with_handler(handler)
    return received


def test_a_signed_request_verifies_on_the_server(outbound_tls, tls_httpserver, verifying_server):
    auth = AwsSigV4Auth(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region="eu-west-2")
    query = urlencode(
        {"b": "2", "a": "hello world", "c": "+plus&more", "empty": ""}, quote_via=quote
    )
    request = OutboundRequest(
        "POST",
        tls_httpserver.url_for("/instance/abc%20def/contact%20flows~x") + "?" + query,
        body=json.dumps({"name": "Zoë"}, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json", "X-Custom": "kept"},
    )

    response = send(auth.apply(request), allowed_hosts={host_of(tls_httpserver)})

    assert (response.status, response.body) == (200, b"signed")
    (received,) = verifying_server
    assert received.args["a"] == "hello world"
    assert received.args["c"] == "+plus&more"
    assert json.loads(received.get_data()) == {"name": "Zoë"}
    assert "x-custom" in received.headers["Authorization"]
    assert "/eu-west-2/connect/aws4_request" in received.headers["Authorization"]


def test_designer_headers_cannot_override_the_signature(
    outbound_tls, tls_httpserver, verifying_server
):
    auth = AwsSigV4Auth(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region="us-east-1")
    designer_headers = {
        "Host": "evil.example",
        "Authorization": "Bearer designer",
        "X-Amz-Date": "20000101T000000Z",
        "x-amz-security-token": "designer-token",
        "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
    }
    request = OutboundRequest("GET", tls_httpserver.url_for("/x"), headers=designer_headers)

    response = send(auth.apply(request), allowed_hosts={host_of(tls_httpserver)})

    assert response.status == 200
    (received,) = verifying_server
    assert received.headers["Host"] == host_of(tls_httpserver)
    assert received.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert received.headers["X-Amz-Date"] != "20000101T000000Z"
    assert "X-Amz-Security-Token" not in received.headers
    assert "X-Amz-Content-Sha256" not in received.headers


def test_a_tampered_request_does_not_verify(outbound_tls, tls_httpserver, verifying_server):
    auth = AwsSigV4Auth(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region="us-east-1")
    signed = auth.apply(OutboundRequest("GET", tls_httpserver.url_for("/a?x=1")))
    tampered = signed.with_url(signed.url.replace("x=1", "x=2"))

    response = send(tampered, allowed_hosts={host_of(tls_httpserver)})

    assert response.status == 403


@pytest.mark.parametrize("region", ["evil.com#", "us-east-1.evil.com", "", "US-EAST-1", "mars-1"])
def test_unknown_regions_are_refused(region):
    with pytest.raises(AuthError) as caught:
        AwsSigV4Auth(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region=region)
    assert caught.value.message == errors.AUTH_REGION_UNKNOWN

    with pytest.raises(amazon_connect.UnknownRegion):
        amazon_connect.base_url(region)


def test_regions_come_from_botocore_across_partitions():
    regions = amazon_connect.regions()

    assert regions == sorted(regions)
    assert {"us-east-1", "eu-west-2", "us-gov-west-1"} <= set(regions)


def test_base_url_is_the_regional_endpoint_unless_overridden(settings):
    settings.AMAZON_CONNECT_ENDPOINT_OVERRIDE = None
    assert amazon_connect.base_url("us-east-1") == "https://connect.us-east-1.amazonaws.com"

    settings.AMAZON_CONNECT_ENDPOINT_OVERRIDE = "https://127.0.0.1:8443"
    assert amazon_connect.base_url("us-east-1") == "https://127.0.0.1:8443"


@pytest.mark.parametrize(
    ("name", "reserved"),
    [("Host", True), ("authorization", True), ("X-Amz-Date", True), ("X-Custom", False)],
)
def test_reserved_headers(name, reserved):
    assert is_reserved_header(name) is reserved


def test_secrets_and_repr():
    auth = AwsSigV4Auth(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region="us-east-1")

    assert auth.secrets() == [SECRET_KEY]
    assert "SECRET-MARKER" not in repr(auth)
    assert auth.renew() is False
