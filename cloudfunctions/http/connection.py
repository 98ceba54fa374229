"""The guarded connection: requests-hardened's IP-pinning adapter, with sockets the call's
deadline can shut down, name resolution the deadline can abandon, and a shared TLS context.

The library internals overridden here, their libraries pinned to a major version in
pyproject.toml, each tested by name in tests/cloudfunctions/http/test_transport_overrides.py:
urllib3's ``HTTPSConnection._new_conn`` and ``PoolManager.pool_classes_by_scheme``, and the
adapter's ``build_connection_pool_key_attributes`` (where requests-hardened resolves, filters
and pins the name) and ``cert_verify``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import ipaddress
import os
import socket
import ssl
from urllib.parse import urlsplit

import certifi
import requests
from django.conf import settings
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.util.ssl_ import create_urllib3_context

from cloudfunctions.http import deadline
from cloudfunctions.http.ip_filter import RefusedAddress, is_refused
from cloudfunctions.http.resolver import is_ip_address, resolvers


class WatchedHTTPSConnection(HTTPSConnection):
    """Register the connection's socket with the current call's watchdog."""

    # A plain-socket duplicate kept for the connection's life: after the TLS wrap the
    # original socket object is detached and an SSLSocket cannot be duplicated.
    _watch_handle: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._close_watch_handle()
        self._watch_handle = sock.dup()
        watchdog = deadline.current.get()
        if watchdog is not None:
            watchdog.watch(self._watch_handle)
        return sock

    def close(self) -> None:
        super().close()
        self._close_watch_handle()

    def _close_watch_handle(self) -> None:
        if self._watch_handle is not None:
            self._watch_handle.close()
            self._watch_handle = None


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


class GuardedAdapter(IPFilterAdapter):
    """requests-hardened's IP-pinning adapter with watched connections and a stricter filter."""

    def __init__(self, *, allow_loopback: bool):
        super().__init__(is_https_proto=True, allow_loopback=allow_loopback)
        self._loopback_allowed = allow_loopback

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": WatchedHTTPSConnectionPool}

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        # This is where requests-hardened resolves the name, with a getaddrinfo() nothing can
        # interrupt: a slow resolver would outlast the deadline. It resolves beside the
        # call instead, and the call stops waiting when its deadline passes.
        resolve = self._pinned
        watchdog = deadline.current.get()
        hostname = urlsplit(request.url).hostname or ""
        if watchdog is None or is_ip_address(hostname):
            return resolve(request, verify, cert)
        try:
            return resolvers.run(hostname, resolve, (request, verify, cert), watchdog)
        except concurrent.futures.TimeoutError:
            watchdog.expire()
            raise requests.exceptions.ConnectTimeout(
                "name resolution outlasted the deadline"
            ) from None

    def _pinned(self, request, verify, cert):
        # requests-hardened resolves the name, filters the address and pins it in "host".
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        address = ipaddress.ip_address(host_params["host"].strip("[]"))
        if is_refused(address, allow_loopback=self._loopback_allowed):
            raise RefusedAddress
        return host_params, pool_kwargs

    def cert_verify(self, conn, url: str, verify, cert) -> None:
        # requests hands urllib3 a bundle path, which it loads into a new context for every
        # connection: about 25 ms for certifi's. The shared context holds it loaded once.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None
        conn.conn_kw["ssl_context"] = verifying_context()


def verifying_context() -> ssl.SSLContext:
    """Return the TLS context trusting OUTBOUND_CA_BUNDLE (or certifi), loaded once per file."""
    bundle = settings.OUTBOUND_CA_BUNDLE or certifi.where()
    stat = os.stat(bundle)  # a replaced bundle is loaded again
    return load_verifying_context(bundle, stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def load_verifying_context(bundle: str, *identity: int) -> ssl.SSLContext:
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    # urllib3 checks the host name itself (requests-hardened connects to the pinned address).
    context.check_hostname = False
    if os.path.isdir(bundle):  # a c_rehash'ed folder such as /etc/ssl/certs
        context.load_verify_locations(capath=bundle)
    else:
        context.load_verify_locations(cafile=bundle)
    return context
