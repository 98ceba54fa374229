"""The one outbound HTTP transport of the app: https only, allow-listed hosts, SSRF-filtered,
no redirects, an overall deadline and a capped response body.

Two ways in: ``send()`` for a single prepared request, and ``GuardedMixin`` to put the same
rules under any ``requests.Session`` subclass (authlib's OAuth2Session uses it).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import heapq
import http.cookiejar
import ipaddress
import itertools
import os
import socket
import ssl
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import requests
import urllib3.exceptions
from django.conf import settings
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.util.ssl_ import create_urllib3_context

from cloudfunctions.http import errors
from orchestration.validators import is_ascii_digits

RESOLVER_THREADS = 16
STAGES = ("url", "request", "dns", "ssrf", "connect", "tls", "timeout", "protocol")
_CHUNK_BYTES = 64 * 1024


class OutboundError(Exception):
    """An outbound call failed; ``message`` is safe to show (no URL query, headers or secrets)."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage
        self.message = message

    def __repr__(self) -> str:
        return f"OutboundError({self.stage!r}, {self.message!r})"


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    truncated: bool
    duration_ms: float


def send(
    request: requests.PreparedRequest,
    *,
    allowed_hosts: Collection[str],
    deadline_seconds: float | None = None,
    max_response_bytes: int | None = None,
) -> OutboundResponse:
    """Send one prepared request under the outbound rules and return its capped response."""
    started = time.monotonic()
    with GuardedSession(
        allowed_hosts, deadline_seconds=deadline_seconds, max_response_bytes=max_response_bytes
    ) as session:
        response = session.send(request)
    return OutboundResponse(
        status=response.status_code,
        headers={name.lower(): value for name, value in response.headers.items()},
        body=response.content,
        truncated=response.truncated,
        duration_ms=(time.monotonic() - started) * 1000,
    )


class GuardedMixin:
    """Enforce the outbound rules in ``send`` of a ``requests.Session`` subclass.

    Call ``_guard()`` once after ``Session.__init__``. Every response comes back fully read
    (``content`` holds at most the cap) with an extra ``truncated`` attribute.
    """

    def _guard(
        self,
        allowed_hosts: Collection[str],
        *,
        deadline_seconds: float | None = None,
        max_response_bytes: int | None = None,
    ) -> None:
        self._allowed_hosts = {_host_key(host) for host in allowed_hosts}
        self._deadline_seconds = deadline_seconds
        self._max_response_bytes = max_response_bytes
        # Environment proxies and .netrc would route around the IP filter or add credentials.
        self.trust_env = False
        self.proxies = {}
        self.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = _GuardedAdapter(allow_loopback=settings.OUTBOUND_ALLOW_LOOPBACK)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        # Loopback where settings name the exact host and port (development's demo API), for
        # a session allowed to call it: requests picks the adapter of the longest matching
        # prefix, "https://host:port/".
        for host in settings.OUTBOUND_LOOPBACK_HOSTS:
            if (key := _host_key(host)) in self._allowed_hosts:
                self.mount(f"https://{_display_host(*key)}/", _GuardedAdapter(allow_loopback=True))

    def get_redirect_target(self, response: requests.Response) -> None:
        # requests would otherwise read the whole 3xx body, uncapped, to prepare the next hop.
        return None

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        host = _check_url(request.url, self._allowed_hosts)
        seconds = self._deadline_seconds or settings.OUTBOUND_DEADLINE_SECONDS
        cap = self._max_response_bytes
        if cap is None:
            cap = settings.OUTBOUND_MAX_RESPONSE_BYTES
        connect_seconds = min(settings.OUTBOUND_CONNECT_TIMEOUT_SECONDS, seconds)
        kwargs.update(
            stream=True,
            allow_redirects=False,
            proxies={},
            verify=True,  # against _verifying_context(): see _GuardedAdapter.cert_verify
            cert=None,
            timeout=(connect_seconds, seconds),
        )
        response = None
        with _Watchdog(seconds) as watchdog:
            try:
                response = super().send(request, **kwargs)
                body, truncated = _read_capped(response, cap)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise _translate(exc, host, watchdog, connect_seconds) from None
            except ValueError:
                # http.client refuses header values with line breaks or non-Latin-1 text, and
                # its message quotes the value, which may be a credential.
                raise OutboundError(
                    "request", errors.OUTBOUND_HEADER_UNSENDABLE.format(host=host)
                ) from None
            finally:
                if response is not None:
                    response.close()
            if watchdog.expired:
                # A body delimited by connection close looks complete once the watchdog cut it.
                raise OutboundError("timeout", _deadline_message(host, seconds))
        response._content = body
        response._content_consumed = True
        response.truncated = truncated
        return response


class GuardedSession(GuardedMixin, requests.Session):
    """A ``requests.Session`` that sends only under the outbound rules."""

    def __init__(
        self,
        allowed_hosts: Collection[str],
        *,
        deadline_seconds: float | None = None,
        max_response_bytes: int | None = None,
    ):
        super().__init__()
        self._guard(
            allowed_hosts,
            deadline_seconds=deadline_seconds,
            max_response_bytes=max_response_bytes,
        )


def retry_after_seconds(value: str | None) -> float | None:
    """Read a Retry-After header given in seconds; None when absent or an HTTP date (which
    would need a clock both sides agree on)."""
    value = (value or "").strip()
    return float(value) if is_ascii_digits(value) else None


def host_of(url: str) -> str:
    """Return the host[:port] of an https URL the way allowed_hosts and messages spell it."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise OutboundError("url", errors.OUTBOUND_URL_INVALID) from None
    if not parts.hostname:
        # A base URL saved around the form's validation (shell, restored dump) lands here.
        raise OutboundError("url", errors.OUTBOUND_URL_INVALID)
    return _display_host(parts.hostname, port)


def _host_key(host: str) -> tuple[str, int]:
    parts = urlsplit(f"//{host}")
    if not parts.hostname or parts.username is not None or parts.path:
        raise ValueError("allowed_hosts entries are host or host:port")
    return parts.hostname, parts.port or 443


def _display_host(hostname: str, port: int) -> str:
    shown = f"[{hostname}]" if ":" in hostname else hostname
    return shown if port == 443 else f"{shown}:{port}"


def _check_url(url: str | None, allowed: set[tuple[str, int]]) -> str:
    try:
        parts = urlsplit(url or "")
        port = parts.port or 443
    except ValueError:
        raise OutboundError("url", errors.OUTBOUND_URL_INVALID) from None
    if parts.scheme.lower() != "https":
        raise OutboundError("url", errors.OUTBOUND_URL_NOT_HTTPS)
    if "@" in parts.netloc:
        raise OutboundError("url", errors.OUTBOUND_URL_CREDENTIALS)
    if not parts.hostname:
        raise OutboundError("url", errors.OUTBOUND_URL_INVALID)
    host = _display_host(parts.hostname, port)
    if (parts.hostname, port) not in allowed:
        raise OutboundError("url", errors.OUTBOUND_HOST_NOT_ALLOWED.format(host=host))
    return host


def _read_capped(response: requests.Response, cap: int) -> tuple[bytes, bool]:
    # iter_content decodes gzip/deflate/br incrementally, so the cap bounds decoded bytes.
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap], True
    return b"".join(chunks), False


def _deadline_message(host: str, seconds: float) -> str:
    return errors.OUTBOUND_DEADLINE.format(host=host, seconds=seconds)


def _translate(
    exc: Exception, host: str, watchdog: _Watchdog, connect_seconds: float
) -> OutboundError:
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if watchdog.expired or isinstance(exc, requests.exceptions.ReadTimeout):
        return OutboundError("timeout", _deadline_message(host, watchdog.seconds))
    if isinstance(exc, InvalidIPAddress):
        return OutboundError("ssrf", errors.OUTBOUND_SSRF_REFUSED.format(host=host))
    if (isinstance(exc, requests.ConnectionError) and isinstance(exc.__cause__, OSError)) or (
        isinstance(reason, urllib3.exceptions.NameResolutionError)
    ):
        # requests-hardened resolves the name itself and chains the resolver's error.
        return OutboundError("dns", errors.OUTBOUND_DNS_FAILED.format(host=host))
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        message = errors.OUTBOUND_CONNECT_TIMEOUT.format(host=host, seconds=connect_seconds)
        return OutboundError("connect", message)
    if isinstance(exc, requests.exceptions.SSLError) or (
        isinstance(exc, OSError) and not isinstance(exc, requests.RequestException)
    ):
        return OutboundError("tls", errors.OUTBOUND_TLS_FAILED.format(host=host))
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return OutboundError("connect", errors.OUTBOUND_CONNECT_FAILED.format(host=host))
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.URLRequired):
        return OutboundError("url", errors.OUTBOUND_URL_INVALID)
    return OutboundError("protocol", errors.OUTBOUND_PROTOCOL.format(host=host))


_current_watchdog: contextvars.ContextVar[_Watchdog | None] = contextvars.ContextVar(
    "outbound_watchdog", default=None
)


class _Watchdog:
    """Shut down this call's sockets when its deadline passes.

    Read timeouts apply per socket read, so a server dripping bytes could hold a call forever.
    Shutting the socket down wakes every blocked read: TLS handshake, headers or body.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        # Own duplicates of the connections' descriptors: shutdown() acts on the shared
        # socket, and closing our duplicate can never close a descriptor reused elsewhere.
        self._sockets: dict[int, socket.socket] = {}
        self.finished = False

    def watch(self, handle: socket.socket) -> None:
        with self._lock:
            if id(handle) in self._sockets:
                return
            duplicate = handle.dup()
            self._sockets[id(handle)] = duplicate
            if self.expired:
                _shutdown(duplicate)

    def expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.expired = True
            for duplicate in self._sockets.values():
                _shutdown(duplicate)

    def __enter__(self) -> _Watchdog:
        self._token = _current_watchdog.set(self)
        self._ends = time.monotonic() + self.seconds
        _deadlines.schedule(self._ends, self)
        return self

    def remaining(self) -> float:
        return self._ends - time.monotonic()

    def __exit__(self, *exc_info) -> None:
        _current_watchdog.reset(self._token)
        with self._lock:
            self.finished = True
            for duplicate in self._sockets.values():
                duplicate.close()
            self._sockets.clear()


class _DeadlineScheduler:
    """One long-lived thread that expires every call's watchdog on time.

    A threading.Timer per call would start a thread per call, which costs more than the
    rest of the transport's overhead together; here a call costs a heap push.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _Watchdog]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, deadline: float, watchdog: _Watchdog) -> None:
        with self._condition:
            # Started lazily, and again in a forked worker, where threads do not survive.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="outbound-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._order), watchdog))
            if self._heap[0][2] is watchdog:
                self._condition.notify()

    def _loop(self) -> None:
        with self._condition:
            while True:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait()
                    continue
                deadline, _, watchdog = self._heap[0]
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                watchdog.expire()


_deadlines = _DeadlineScheduler()


def _shutdown(sock: socket.socket) -> None:
    # It may already be closed, by the peer or by us.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedHTTPSConnection(HTTPSConnection):
    """Register the connection's socket with the current call's watchdog."""

    # A plain-socket duplicate kept for the connection's life: after the TLS wrap the
    # original socket object is detached and an SSLSocket cannot be duplicated.
    _watch_handle: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._close_watch_handle()
        self._watch_handle = sock.dup()
        self._watch()
        return sock

    def request(self, *args, **kwargs):
        self._watch()  # a connection reused from the pool
        return super().request(*args, **kwargs)

    def close(self) -> None:
        super().close()
        self._close_watch_handle()

    def _watch(self) -> None:
        watchdog = _current_watchdog.get()
        if watchdog is not None and self._watch_handle is not None:
            watchdog.watch(self._watch_handle)

    def _close_watch_handle(self) -> None:
        if self._watch_handle is not None:
            self._watch_handle.close()
            self._watch_handle = None


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _GuardedAdapter(IPFilterAdapter):
    """requests-hardened's IP-pinning adapter with watched connections."""

    def __init__(self, *, allow_loopback: bool):
        super().__init__(is_https_proto=True, allow_loopback=allow_loopback)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _WatchedHTTPSConnectionPool}

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        # This is where requests-hardened resolves the name, with a getaddrinfo() nothing can
        # interrupt: a slow resolver would outlast the deadline. It resolves beside the
        # call instead, and the call stops waiting when its deadline passes.
        resolve = super().build_connection_pool_key_attributes
        watchdog = _current_watchdog.get()
        parts = urlsplit(request.url)
        if watchdog is None or _is_ip_address(parts.hostname or ""):
            return resolve(request, verify, cert)
        try:
            return _resolvers.run(parts.hostname, resolve, (request, verify, cert), watchdog)
        except concurrent.futures.TimeoutError:
            watchdog.expire()
            raise requests.exceptions.ConnectTimeout(
                "name resolution outlasted the deadline"
            ) from None

    def cert_verify(self, conn, url: str, verify, cert) -> None:
        # requests hands urllib3 a bundle path, which it loads into a new context for every
        # connection: about 25 ms for certifi's. The shared context holds it loaded once.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None
        conn.conn_kw["ssl_context"] = _verifying_context()


class _Resolvers:
    """A few threads that resolve names for calls that stop waiting at their deadline.

    A lookup that hangs holds its thread until the system resolver gives up (seconds to
    minutes). So that one such name cannot take every thread, a name has at most one lookup
    in progress, whatever the port: later calls for it wait on that one, within their own
    deadlines, and only start their own once it has ended.
    """

    def __init__(self):
        self._start()
        # Threads, and a lookup in progress, do not survive fork() (an RQ job process): the
        # child starts afresh, with a lock nobody can be holding.
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._busy: dict[str, concurrent.futures.Future] = {}

    def run(self, name: str, function, args: tuple, watchdog: _Watchdog):
        while True:
            with self._lock:
                busy = self._busy.get(name)
                if busy is None or busy.done():
                    future = self._busy[name] = self._executor().submit(function, *args)
                    break
            concurrent.futures.wait([busy], timeout=max(watchdog.remaining(), 0))
            if not busy.done():
                raise concurrent.futures.TimeoutError
        future.add_done_callback(lambda done: self._forget(name, done))
        try:
            return future.result(timeout=max(watchdog.remaining(), 0))
        except concurrent.futures.TimeoutError:
            future.cancel()  # still queued behind other names: never started
            raise

    def _forget(self, name: str, future: concurrent.futures.Future) -> None:
        with self._lock:
            if self._busy.get(name) is future:
                del self._busy[name]

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=RESOLVER_THREADS, thread_name_prefix="outbound-dns"
            )
        return self._pool


_resolvers = _Resolvers()


def _is_ip_address(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def _verifying_context() -> ssl.SSLContext:
    bundle = settings.OUTBOUND_CA_BUNDLE or certifi.where()
    stat = os.stat(bundle)  # a replaced bundle is loaded again
    return _load_verifying_context(bundle, stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _load_verifying_context(bundle: str, *identity: int) -> ssl.SSLContext:
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    # urllib3 checks the host name itself (requests-hardened connects to the pinned address).
    context.check_hostname = False
    if os.path.isdir(bundle):  # a c_rehash'ed folder such as /etc/ssl/certs
        context.load_verify_locations(capath=bundle)
    else:
        context.load_verify_locations(cafile=bundle)
    return context
