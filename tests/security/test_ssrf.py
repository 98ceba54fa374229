"""SSRF: every way of pointing an outbound call at an internal address is refused.

Calls go through the real execution service and transport with the loopback allowlist off,
as in production. A listening "trap" socket on loopback stands for the internal service;
the ``connects`` spy records every socket connect the process makes.
"""

from __future__ import annotations

import re
import socket

import pytest

from cloudfunctions.http import errors, transport
from cloudfunctions.step.execution import cloud_function_execute
from tests.factories import ApiKeyConnectionFactory, CloudFunctionFactory

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"  # a public address: passes the filter, unreachable from here


@pytest.fixture
def trap():
    """A loopback listener nobody should reach; ``trap.reached()`` says whether anyone did."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)

    class Trap:
        port = listener.getsockname()[1]

        @staticmethod
        def reached() -> bool:
            # The kernel completes connections without accept(): a pending one means contact.
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return False
            conn.close()
            return True

    yield Trap
    listener.close()


def _execute(base_url: str, uri: str = '"/v1/items"'):
    connection = ApiKeyConnectionFactory(base_url=base_url)
    cf = CloudFunctionFactory(connection=connection, method="GET", uri=uri, body="")
    return cloud_function_execute(cloud_function=cf, context={})


def _assert_untouched(trap, connects):
    assert not trap.reached()
    assert not [a for a in connects if a[0] in ("127.0.0.1", "::1")], connects


# (base URL, stage): the base URL of a connection saved straight to the database, as if
# the form's validation had been bypassed; {port} is the trap's port.
ADDRESSES = [
    ("https://127.0.0.1:{port}", "ssrf"),
    ("https://127.1.2.3:{port}", "ssrf"),
    ("https://localhost:{port}", "ssrf"),
    # A trailing-dot name resolves only where the resolver allows it; refused either way.
    ("https://LOCALHOST.:{port}", ("ssrf", "dns")),
    ("https://[::1]:{port}", "ssrf"),
    ("https://[::ffff:127.0.0.1]:{port}", "ssrf"),
    ("https://[::ffff:7f00:1]:{port}", "ssrf"),
    ("https://[64:ff9b::7f00:1]:{port}", "ssrf"),
    ("https://[::]:{port}", "ssrf"),
    ("https://0.0.0.0:{port}", "ssrf"),
    ("https://0:{port}", "ssrf"),
    ("https://2130706433:{port}", "ssrf"),
    ("https://0177.0.0.1:{port}", "ssrf"),
    ("https://0x7f000001:{port}", "ssrf"),
    ("https://0x7f.0.0.1:{port}", "ssrf"),
    ("https://127.000.000.001:{port}", "ssrf"),
    ("https://127.1:{port}", "ssrf"),
    ("https://10.0.0.1", "ssrf"),
    ("https://172.16.0.1", "ssrf"),
    ("https://192.168.1.1", "ssrf"),
    ("https://169.254.169.254", "ssrf"),
    ("https://169.254.169.254:{port}", "ssrf"),
    ("https://[fd00:ec2::254]", "ssrf"),
    ("https://[fe80::1]", "ssrf"),
    ("https://100.100.100.200", "ssrf"),
    ("https://224.0.0.1", "ssrf"),
    ("https://127.0.0.1:22", "ssrf"),
    # IPv4 embedded in IPv6 other than ::ffff:0:0/96, site-local and reserved (issue 13, D8).
    ("https://[::169.254.169.254]", "ssrf"),
    ("https://[::127.0.0.1]:{port}", "ssrf"),
    ("https://[::7f00:1]:{port}", "ssrf"),
    ("https://[::10.0.0.1]", "ssrf"),
    ("https://[::ffff:0:127.0.0.1]:{port}", "ssrf"),
    ("https://[64:ff9b:1::7f00:1]:{port}", "ssrf"),
    ("https://[2002:7f00:1::1]:{port}", "ssrf"),
    ("https://[2001:0:7f00:1::1]:{port}", "ssrf"),
    ("https://[fec0::1]", "ssrf"),
    ("https://[100::1]", "ssrf"),
    ("https://198.18.0.1", "ssrf"),
    ("https://240.0.0.1", "ssrf"),
    ("HTTPS://127.0.0.1:{port}", "ssrf"),
    ("http://127.0.0.1:{port}", "url"),
    ("http://api.example.com", "url"),
    ("ftp://127.0.0.1:{port}", "url"),
    ("file:///etc/passwd", "url"),
    ("gopher://127.0.0.1:{port}/_", "url"),
    ("https://good@127.0.0.1:{port}", "url"),
    ("https://api.example.com@127.0.0.1:{port}", "url"),
    ("https://api.example.com:x@127.0.0.1:{port}", "url"),
    ("https://api.example.com:99999", "url"),
    ("https://api.example.com:-1", "url"),
]


@pytest.mark.parametrize("base_url, stage", ADDRESSES)
def test_internal_addresses_are_refused(no_loopback, trap, connects, base_url, stage):
    result = _execute(base_url.format(port=trap.port))
    assert not result.ok
    assert result.error_stage in ((stage,) if isinstance(stage, str) else stage), result
    assert result.error_message.startswith(("Refused", "Could not")), result.error_message
    assert connects == []
    _assert_untouched(trap, connects)


# (name, DNS answers): names whose resolution points inside.
RESOLUTIONS = [
    ("internal.example", ["127.0.0.1"]),
    ("metadata.example", ["169.254.169.254"]),
    ("v6-loopback.example", ["::1"]),
    ("mapped.example", ["::ffff:127.0.0.1"]),
    ("private.example", ["10.1.2.3"]),
    ("compatible.example", ["::169.254.169.254"]),
    ("compatible-loopback.example", ["::127.0.0.1"]),
    ("site-local.example", ["fec0::1"]),
    ("loopback-first.example", ["127.0.0.1", PUBLIC]),
]


@pytest.mark.parametrize("name, answers", RESOLUTIONS)
def test_names_resolving_inside_are_refused(no_loopback, trap, connects, resolver, name, answers):
    resolver[name] = answers
    result = _execute(f"https://{name}:{trap.port}")
    assert result.error_stage == "ssrf", result.error_message
    assert result.error_message == errors.OUTBOUND_SSRF_REFUSED.format(host=f"{name}:{trap.port}")
    assert connects == []
    _assert_untouched(trap, connects)


def test_rebinding_connects_only_to_the_address_it_validated(no_loopback, trap, connects, resolver):
    # DNS answers public first, loopback second: the transport pins the first address it
    # checked, so the loopback one is never tried even when the public one fails.
    resolver["rebind.example"] = [PUBLIC, "127.0.0.1"]
    result = _execute(f"https://rebind.example:{trap.port}")
    assert not result.ok
    assert result.error_stage in ("connect", "timeout", "tls"), result.error_message
    assert [address[0] for address in connects] == [PUBLIC]
    _assert_untouched(trap, connects)


# (URI CEL expression, stage or None for a request that stays on the base URL)
URIS = [
    ('"//evil.example/x"', "url"),
    ('"https://evil.example/x"', "url"),
    ('"https://127.0.0.1/x"', "url"),
    ('"/../admin"', "url"),
    ('"/a/../../b"', "url"),
    ('"/a/%2e%2e/b"', "url"),
    ('"/%2E%2E/%2E%2E/etc"', "url"),
    ('"/./x"', "url"),
    ('"\\\\evil.example/x"', "url"),
    ('"/\\\\evil.example/x"', "url"),
    ('"/a\\\\..\\\\b"', "url"),
    ('"@evil.example"', "url"),
    ('"evil.example/x"', "url"),
    ('"%2f%2fevil.example"', "url"),
    ('" /x"', "url"),
    ('"/@evil.example"', None),
    ('"/x?next=https://evil.example"', None),
    ('"/x#@evil.example"', None),
    ('"/x\\r\\nHost: evil.example"', "cel"),
    ('"/%2f%2fevil.example"', None),
]


@pytest.mark.parametrize("uri, stage", URIS)
def test_uris_never_change_the_host(outbound_tls, tls_httpserver, connects, uri, stage):
    # Loopback is allowed here: the base URL is the test server, the attack is in the URI.
    base = tls_httpserver.url_for("/api").rstrip("/")
    tls_httpserver.expect_request(re.compile("^/api/")).respond_with_data("ok")
    result = _execute(base, uri)
    if stage is None:
        assert result.ok, result.error_message
        (request, _), *_ = tls_httpserver.log
        assert request.host == f"127.0.0.1:{tls_httpserver.port}"
        assert request.path.startswith("/api/")
        assert "evil.example" not in request.headers.get("Host", "")
    else:
        assert result.error_stage == stage, result.error_message
        assert not tls_httpserver.log
        assert connects == []
    assert {address[1] for address in connects} <= {tls_httpserver.port}


REDIRECTS = [
    "https://169.254.169.254/latest/meta-data/",
    "https://127.0.0.1:{port}/",
    "https://[::1]:{port}/",
    "https://0x7f000001:{port}/",
    "https://localhost:{port}/",
    "http://127.0.0.1:{port}/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_",
    "//127.0.0.1:{port}/",
    "/internal",
]


@pytest.mark.parametrize("location", REDIRECTS)
def test_redirects_are_returned_not_followed(
    outbound_tls, tls_httpserver, trap, connects, location
):
    # The first hop must be reachable, so loopback is on; no second hop may happen at all.
    target = location.format(port=trap.port)
    tls_httpserver.expect_request("/api/v1/items").respond_with_data(
        "", status=302, headers={"Location": target}
    )
    result = _execute(tls_httpserver.url_for("/api").rstrip("/"))
    assert result.payload["status"] == 302
    assert result.payload["headers"]["location"] == target
    assert len(tls_httpserver.log) == 1
    assert len(connects) == 1 and connects[0][1] == tls_httpserver.port
    assert not trap.reached()


# Straight through the transport: a prepared request and the hosts it may go to.
SENDS = [
    ("https://127.0.0.1:{port}/", {"127.0.0.1:{port}"}, "ssrf"),
    ("https://127.0.0.1:{port}/", {"api.example.com"}, "url"),
    ("https://api.example.com@127.0.0.1:{port}/", {"api.example.com"}, "url"),
    ("https://api.example.com\\@127.0.0.1:{port}/", {"api.example.com"}, "url"),
    ("https://127.0.0.1:{port}/", {"127.0.0.1"}, "url"),
    ("http://127.0.0.1:{port}/", {"127.0.0.1:{port}"}, "url"),
    ("https:///x", {"api.example.com"}, "url"),
    ("https://[::1:{port}/", {"api.example.com"}, "url"),
]


@pytest.mark.parametrize("url, allowed, stage", SENDS)
def test_transport_refuses_before_connecting(no_loopback, trap, connects, url, allowed, stage):
    request = transport.OutboundRequest("GET", url.format(port=trap.port))
    with pytest.raises(transport.OutboundError) as refused:
        transport.send(request, allowed_hosts={h.format(port=trap.port) for h in allowed})
    assert refused.value.stage == stage
    assert connects == []
    _assert_untouched(trap, connects)
