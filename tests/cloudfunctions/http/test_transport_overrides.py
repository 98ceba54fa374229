"""The library internals the transport overrides, each exercised directly.

requests, requests-hardened and urllib3 are pinned to a major version in pyproject.toml; an
upgrade that moves one of these internals fails the test named after it here, instead of
silently dropping the deadline, the IP pinning or the shared TLS context.
"""

from __future__ import annotations

import socket

import pytest
import requests
from requests_hardened.ip_filter import InvalidIPAddress
from urllib3.connection import HTTPSConnection

from cloudfunctions.http.connection import (
    GuardedAdapter,
    WatchedHTTPSConnection,
    WatchedHTTPSConnectionPool,
    verifying_context,
)
from cloudfunctions.http.deadline import Watchdog


def _prepared(url: str) -> requests.PreparedRequest:
    prepared = requests.PreparedRequest()
    prepared.prepare(method="GET", url=url)
    return prepared


def test_urllib3_new_conn_is_overridden_and_registers_the_socket(outbound_tls, tls_httpserver):
    # urllib3 opens every socket in HTTPSConnection._new_conn (a private method).
    assert callable(getattr(HTTPSConnection, "_new_conn", None))
    conn = WatchedHTTPSConnection(
        "127.0.0.1",
        tls_httpserver.port,
        ssl_context=verifying_context(),
        server_hostname="localhost",
    )
    try:
        with Watchdog(30) as watchdog:
            conn.connect()
            (registered,) = watchdog._sockets.values()
            assert registered.getpeername() == ("127.0.0.1", tls_httpserver.port)
            watchdog.expire()  # the deadline shuts the connection's own socket down
            assert conn.sock.recv(1) == b""
    finally:
        conn.close()
    assert conn._watch_handle is None


def test_the_pool_manager_builds_watched_pools():
    # PoolManager.pool_classes_by_scheme and HTTPSConnectionPool.ConnectionCls.
    adapter = GuardedAdapter(allow_loopback=True)
    pool = adapter.poolmanager.connection_from_url("https://127.0.0.1:9/")
    assert isinstance(pool, WatchedHTTPSConnectionPool)
    assert pool.ConnectionCls is WatchedHTTPSConnection
    adapter.close()


def test_requests_hardened_resolves_and_pins_in_build_connection_pool_key_attributes(monkeypatch):
    # Faked resolver (no DNS here): requests-hardened must resolve in this very method, since
    # GuardedAdapter runs it on a resolver thread the call's deadline can abandon.
    looked_up = []

    def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    adapter = GuardedAdapter(allow_loopback=False)
    request = _prepared("https://api.example.com:8443/x")

    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(request, True)

    assert looked_up == ["api.example.com"]
    assert (host_params["host"], host_params["port"]) == ("93.184.216.34", 8443)
    assert pool_kwargs["server_hostname"] == pool_kwargs["assert_hostname"] == "api.example.com"
    assert request.headers["Host"] == "api.example.com:8443"


def test_requests_hardened_refuses_a_private_address_there(monkeypatch):
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port))
        ],
    )
    adapter = GuardedAdapter(allow_loopback=True)

    with pytest.raises(InvalidIPAddress):
        adapter.build_connection_pool_key_attributes(_prepared("https://inside.example/"), True)


def test_cert_verify_hands_urllib3_the_shared_context(outbound_tls):
    adapter = GuardedAdapter(allow_loopback=True)
    request = _prepared("https://127.0.0.1:9/")
    pool = adapter.get_connection_with_tls_context(request, True, proxies={})

    adapter.cert_verify(pool, request.url, True, None)

    assert pool.conn_kw["ssl_context"] is verifying_context()
    assert pool.ca_certs is None and pool.cert_reqs == "CERT_REQUIRED"
    adapter.close()
