from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import traceback
import tracemalloc
import zlib
from pathlib import Path

import pytest
import trustme
from werkzeug import Request, Response

from cloudfunctions.http import connection, errors
from cloudfunctions.http.transport import OutboundError, OutboundRequest, send
from tests.clock import GENEROUS_SECONDS

MARKER = "SECRET-MARKER-apikey-7f3a"


def prepared(url: str, *, method: str = "GET", **kwargs) -> OutboundRequest:
    return OutboundRequest(method, url, **kwargs)


def host_of(server) -> str:
    return f"127.0.0.1:{server.port}"


def assert_no_secret(error: BaseException) -> None:
    shown = "".join(traceback.format_exception(error)) + repr(error)
    assert MARKER not in shown
    assert "api_key=" not in shown


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything resolves or connects."""

    def refuse(*args, **kwargs):
        raise AssertionError("network I/O attempted")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def fake_dns(monkeypatch):
    """Resolve chosen names to chosen addresses, as a hostile DNS server would."""
    real = socket.getaddrinfo
    answers: dict[str, str] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            address = answers[host]
            if ":" in address:
                return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_sends_over_tls_and_returns_the_response(outbound_tls, tls_httpserver):
    tls_httpserver.expect_request("/hello", query_string="a=1").respond_with_data(
        "hi", headers={"X-Thing": "yes"}
    )

    response = send(
        prepared(tls_httpserver.url_for("/hello?a=1")), allowed_hosts={host_of(tls_httpserver)}
    )

    assert (response.status, response.body, response.truncated) == (200, b"hi", False)
    assert response.headers["x-thing"] == "yes"
    assert response.duration_ms > 0


def test_a_body_is_sent_with_its_length_and_headers_as_given(outbound_tls, tls_httpserver):
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response('{"ok": true}', content_type="application/json")

    tls_httpserver.expect_request("/data", method="POST").respond_with_handler(handler)
    url = tls_httpserver.url_for("/data") + "?q=a%20b+c"

    response = send(
        prepared(url, method="post", headers={"X-Thing": "yes"}, body=b'{"x": 1}'),
        allowed_hosts={host_of(tls_httpserver)},
    )

    assert (response.status, response.body) == (200, b'{"ok": true}')
    (received,) = seen
    assert received.get_data() == b'{"x": 1}'
    assert received.headers["Content-Length"] == "8"
    assert received.headers["X-Thing"] == "yes"
    assert "Transfer-Encoding" not in received.headers
    assert received.query_string == b"q=a%20b+c"  # the URL is sent as built, not re-encoded


@pytest.mark.parametrize("url", ["http://example.com/", "ftp://example.com/", "example.com/x"])
def test_only_https_is_sent_and_before_any_io(no_network, url):
    with pytest.raises(OutboundError) as caught:
        send(_with_url(url), allowed_hosts={"example.com", "example.com:80"})

    assert caught.value.stage == "url"
    assert caught.value.message in (errors.OUTBOUND_URL_NOT_HTTPS, errors.OUTBOUND_URL_INVALID)


def _with_url(url: str) -> OutboundRequest:
    return prepared(url)


def test_credentials_in_the_url_are_refused(no_network):
    with pytest.raises(OutboundError) as caught:
        send(prepared("https://user:pw@example.com/"), allowed_hosts={"example.com"})

    assert caught.value.message == errors.OUTBOUND_URL_CREDENTIALS


def test_a_host_outside_the_allowed_set_is_refused(no_network):
    with pytest.raises(OutboundError) as caught:
        send(prepared("https://evil.example/"), allowed_hosts={"api.example.com"})

    assert caught.value.stage == "url"
    assert caught.value.message == errors.OUTBOUND_HOST_NOT_ALLOWED.format(host="evil.example")


def test_the_port_is_part_of_the_allowed_host(outbound_tls, tls_httpserver):
    with pytest.raises(OutboundError) as caught:
        send(prepared(tls_httpserver.url_for("/")), allowed_hosts={"127.0.0.1"})

    assert caught.value.stage == "url"
    assert len(tls_httpserver.log) == 0


def test_redirects_are_returned_not_followed(outbound_tls, tls_httpserver):
    target = tls_httpserver.url_for("/elsewhere")
    tls_httpserver.expect_request("/start").respond_with_response(
        Response("x" * 5000, 302, {"Location": target})
    )
    tls_httpserver.expect_request("/elsewhere").respond_with_data("followed")

    response = send(
        prepared(tls_httpserver.url_for("/start")),
        allowed_hosts={host_of(tls_httpserver)},
        max_response_bytes=1000,
    )

    assert response.status == 302
    assert response.headers["location"] == target
    assert (len(response.body), response.truncated) == (1000, True)
    assert [request.path for request, _ in tls_httpserver.log] == ["/start"]


def test_loopback_is_refused_unless_allowed(outbound_tls, tls_httpserver):
    outbound_tls.OUTBOUND_ALLOW_LOOPBACK = False

    with pytest.raises(OutboundError) as caught:
        send(prepared(tls_httpserver.url_for("/")), allowed_hosts={host_of(tls_httpserver)})

    assert caught.value.stage == "ssrf"
    assert caught.value.message == errors.OUTBOUND_SSRF_REFUSED.format(host=host_of(tls_httpserver))
    assert len(tls_httpserver.log) == 0


@pytest.mark.parametrize("allow_loopback", [False, True])
@pytest.mark.parametrize(
    "host", ["10.0.0.1", "169.254.169.254", "192.168.1.1", "100.64.0.1", "[fd00::1]", "0.0.0.0"]
)
def test_private_and_metadata_addresses_are_always_refused(
    settings, monkeypatch, host, allow_loopback
):
    settings.OUTBOUND_ALLOW_LOOPBACK = allow_loopback
    monkeypatch.setattr(socket, "create_connection", pytest.fail)

    with pytest.raises(OutboundError) as caught:
        send(prepared(f"https://{host}/latest/meta-data/"), allowed_hosts={host})

    assert caught.value.stage == "ssrf"


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "127.8.9.10"])
def test_loopback_literals_are_refused_by_default(settings, monkeypatch, host):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    monkeypatch.setattr(socket, "create_connection", pytest.fail)

    with pytest.raises(OutboundError) as caught:
        send(prepared(f"https://{host}/"), allowed_hosts={host})

    assert caught.value.stage == "ssrf"


@pytest.mark.parametrize("address", ["169.254.169.254", "10.1.2.3", "::ffff:169.254.169.254"])
def test_names_resolving_to_private_addresses_are_refused(settings, fake_dns, address):
    # The resolver is faked (no DNS here); the filter sees the address the name resolves to.
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    fake_dns["metadata.attacker.example"] = address

    with pytest.raises(OutboundError) as caught:
        send(
            prepared("https://metadata.attacker.example/"),
            allowed_hosts={"metadata.attacker.example"},
        )

    assert caught.value.stage == "ssrf"


def test_unresolvable_names_fail_at_dns(monkeypatch):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    with pytest.raises(OutboundError) as caught:
        send(
            prepared(f"https://nowhere.example/?api_key={MARKER}"),
            allowed_hosts={"nowhere.example"},
        )

    assert caught.value.stage == "dns"
    assert caught.value.message == errors.OUTBOUND_DNS_FAILED.format(host="nowhere.example")
    assert_no_secret(caught.value)


def test_a_slow_resolver_cannot_outlast_the_deadline(monkeypatch):
    # A faked resolver (this machine has no DNS to slow down): getaddrinfo() blocks in C,
    # where no timeout or socket shutdown reaches it.
    released = threading.Event()

    def getaddrinfo(*args, **kwargs):
        released.wait(60)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    started = time.monotonic()
    try:
        with pytest.raises(OutboundError) as caught:
            send(
                prepared(f"https://slow-dns.example/?api_key={MARKER}"),
                allowed_hosts={"slow-dns.example"},
                deadline_seconds=0.3,
            )
    finally:
        released.set()

    assert time.monotonic() - started < GENEROUS_SECONDS
    assert caught.value.stage == "timeout"
    assert caught.value.message == errors.OUTBOUND_DEADLINE.format(
        host="slow-dns.example", seconds=0.3
    )
    assert_no_secret(caught.value)


def test_a_name_that_never_resolves_holds_one_resolver_thread(monkeypatch, settings):
    # Faked resolver, as above. Before, each call to the hung name took a thread of its own
    # until the resolver gave up: 16 of them left none for any other name.
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    released = threading.Event()

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "hung.example":
            released.wait(10)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def call(host):
        try:
            send(prepared(f"https://{host}/"), allowed_hosts={host}, deadline_seconds=0.3)
        except OutboundError as error:
            return error.stage

    try:
        # On as many ports: the lookup is of the name, whatever the port.
        callers = [
            threading.Thread(target=call, args=(f"hung.example:{8000 + n}",)) for n in range(20)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(5)
        # Another name still resolves (to a private address, which the filter then refuses).
        assert call("elsewhere.example") == "ssrf"
        assert call("hung.example") == "timeout"
    finally:
        released.set()


def test_a_forked_worker_resolves_names_its_parent_is_still_waiting_for(monkeypatch, settings):
    # An RQ job process is forked from its worker, maybe while a lookup is in progress
    # there: the child must not wait on a lookup that, in the child, nobody is doing.
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    parent, released = os.getpid(), threading.Event()

    def getaddrinfo(host, port, *args, **kwargs):
        if os.getpid() == parent:
            released.wait(10)  # the parent's lookup hangs (faked resolver, as above)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def call():
        try:
            send(
                prepared("https://slow.example/"),
                allowed_hosts={"slow.example"},
                deadline_seconds=2,
            )
        except OutboundError as error:
            return error.stage

    waiting = threading.Thread(target=call)
    waiting.start()
    try:
        time.sleep(0.2)  # the parent's lookup is in progress
        child = os.fork()
        if child == 0:  # resolved at once here, and refused as private: not a timeout
            os._exit(0 if call() == "ssrf" else 1)
        _, status = os.waitpid(child, 0)
    finally:
        released.set()
        waiting.join(5)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_closed_port_fails_at_connect(outbound_tls):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]

    with pytest.raises(OutboundError) as caught:
        send(
            prepared(f"https://127.0.0.1:{port}/?api_key={MARKER}"),
            allowed_hosts={f"127.0.0.1:{port}"},
        )

    assert caught.value.stage == "connect"
    assert_no_secret(caught.value)


def test_an_untrusted_certificate_fails_at_tls(outbound_tls, tls_httpserver):
    outbound_tls.OUTBOUND_CA_BUNDLE = None  # certifi does not know the test CA

    with pytest.raises(OutboundError) as caught:
        send(
            prepared(tls_httpserver.url_for(f"/?api_key={MARKER}"), headers={"X-Key": MARKER}),
            allowed_hosts={host_of(tls_httpserver)},
        )

    assert caught.value.stage == "tls"
    assert caught.value.message == errors.OUTBOUND_TLS_FAILED.format(host=host_of(tls_httpserver))
    assert_no_secret(caught.value)


def test_the_ca_bundle_is_loaded_once_and_again_when_replaced(
    outbound_tls, tls_httpserver, tmp_path
):
    tls_httpserver.expect_request("/").respond_with_data("ok")
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(outbound_tls.OUTBOUND_CA_BUNDLE).read_bytes())
    outbound_tls.OUTBOUND_CA_BUNDLE = str(bundle)
    loads = connection.load_verifying_context.cache_info().misses
    for _ in range(3):
        send(prepared(tls_httpserver.url_for("/")), allowed_hosts={host_of(tls_httpserver)})
    assert connection.load_verifying_context.cache_info().misses == loads + 1

    trustme.CA().cert_pem.write_to_path(str(bundle))  # an operator swaps in another CA
    with pytest.raises(OutboundError) as caught:
        send(prepared(tls_httpserver.url_for("/")), allowed_hosts={host_of(tls_httpserver)})
    assert caught.value.stage == "tls"


def test_a_ca_folder_works_as_the_bundle(outbound_tls, tls_httpserver, tmp_path, tls_ca):
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to name the certificate by its subject hash")
    tls_ca.cert_pem.write_to_path(str(tmp_path / "test-ca.pem"))
    subprocess.run(["openssl", "rehash", str(tmp_path)], check=True)  # as /etc/ssl/certs is
    outbound_tls.OUTBOUND_CA_BUNDLE = str(tmp_path)
    tls_httpserver.expect_request("/").respond_with_data("ok")
    response = send(prepared(tls_httpserver.url_for("/")), allowed_hosts={host_of(tls_httpserver)})
    assert response.status == 200


def test_a_missing_ca_bundle_fails_at_tls(outbound_tls, tls_httpserver, tmp_path):
    outbound_tls.OUTBOUND_CA_BUNDLE = str(tmp_path / "missing.pem")
    with pytest.raises(OutboundError) as caught:
        send(prepared(tls_httpserver.url_for("/")), allowed_hosts={host_of(tls_httpserver)})
    assert caught.value.stage == "tls"


def _read_request(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return
        data += chunk


def _drip(sock: socket.socket, data: bytes, interval: float = 0.2) -> None:
    for byte in data:
        sock.sendall(bytes([byte]))
        time.sleep(interval)


def _drip_body(sock):
    _read_request(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    _drip(sock, b"x" * 1000)


def _drip_headers(sock):
    _read_request(sock)
    _drip(sock, b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 1000 + b"\r\n\r\n")


def _drip_close_delimited_body(sock):
    _read_request(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    _drip(sock, b"x" * 1000)


def _never_handshake(sock):
    sock.recv(65536)
    time.sleep(5)


@pytest.mark.parametrize(
    ("handler", "handshake"),
    [
        (_drip_body, True),
        (_drip_headers, True),
        (_drip_close_delimited_body, True),
        (_never_handshake, False),
    ],
)
def test_a_slow_server_is_cut_at_the_overall_deadline(
    outbound_tls, tls_socket_server, handler, handshake
):
    host = tls_socket_server(handler, handshake=handshake)
    started = time.monotonic()

    with pytest.raises(OutboundError) as caught:
        send(
            prepared(f"https://{host}/?api_key={MARKER}"),
            allowed_hosts={host},
            deadline_seconds=1.5,
        )

    elapsed = time.monotonic() - started
    assert caught.value.stage == "timeout"
    assert caught.value.message == errors.OUTBOUND_DEADLINE.format(host=host, seconds=1.5)
    # Not cut early (load only lengthens it), and cut: the drip alone lasts minutes.
    assert 1.4 < elapsed < GENEROUS_SECONDS
    assert_no_secret(caught.value)


def test_the_deadline_comes_from_settings(outbound_tls, tls_socket_server):
    outbound_tls.OUTBOUND_DEADLINE_SECONDS = 1.0
    host = tls_socket_server(_drip_body)
    started = time.monotonic()

    with pytest.raises(OutboundError) as caught:
        send(prepared(f"https://{host}/"), allowed_hosts={host})

    assert caught.value.message == errors.OUTBOUND_DEADLINE.format(host=host, seconds=1.0)
    assert time.monotonic() - started < GENEROUS_SECONDS  # the default deadline is 15 s


@pytest.mark.parametrize(("size", "truncated"), [(999, False), (1000, False), (1001, True)])
def test_the_body_is_capped(outbound_tls, tls_httpserver, size, truncated):
    tls_httpserver.expect_request("/big").respond_with_data(b"z" * size)

    response = send(
        prepared(tls_httpserver.url_for("/big")),
        allowed_hosts={host_of(tls_httpserver)},
        max_response_bytes=1000,
    )

    assert (len(response.body), response.truncated) == (min(size, 1000), truncated)


def test_the_cap_comes_from_settings(outbound_tls, tls_httpserver):
    outbound_tls.OUTBOUND_MAX_RESPONSE_BYTES = 10
    tls_httpserver.expect_request("/big").respond_with_data(b"z" * 100)

    response = send(
        prepared(tls_httpserver.url_for("/big")), allowed_hosts={host_of(tls_httpserver)}
    )

    assert (response.body, response.truncated) == (b"z" * 10, True)


def _gzip_bomb(decoded_mib: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(decoded_mib)]
    return b"".join(parts) + compressor.flush()


def test_a_gzip_bomb_is_capped_on_decoded_bytes(outbound_tls, tls_httpserver):
    bomb = _gzip_bomb(256)
    assert len(bomb) < 1024 * 1024
    tls_httpserver.expect_request("/bomb").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}
    )
    cap = 1024 * 1024

    tracemalloc.start()
    try:
        response = send(
            prepared(tls_httpserver.url_for("/bomb")),
            allowed_hosts={host_of(tls_httpserver)},
            max_response_bytes=cap,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (response.body, response.truncated) == (bytes(cap), True)
    assert peak < 16 * cap
