"""The one outbound HTTP transport of the app: https only, allow-listed hosts, SSRF-filtered,
no redirects, an overall deadline and a capped response body.

``send()`` takes an ``OutboundRequest`` and returns an ``OutboundResponse``; nothing outside
this package sees requests or urllib3. It drives a requests transport adapter directly, with
no ``requests.Session`` around it: a session would add environment proxies, .netrc
credentials, cookies and redirect handling, each of which would have to be switched off.
"""

from __future__ import annotations

import time
from collections.abc import Collection

import requests
import urllib3.exceptions
from django.conf import settings
from requests.structures import CaseInsensitiveDict
from requests_hardened.ip_filter import InvalidIPAddress

from cloudfunctions.http import errors
from cloudfunctions.http.connection import GuardedAdapter
from cloudfunctions.http.deadline import Watchdog
from cloudfunctions.http.hosts import check_url, host_key, host_of
from cloudfunctions.http.ip_filter import RefusedAddress
from cloudfunctions.http.request import (
    OutboundError,
    OutboundRequest,
    OutboundResponse,
    retry_after_seconds,
)

__all__ = [
    "OutboundError",
    "OutboundRequest",
    "OutboundResponse",
    "host_of",
    "retry_after_seconds",
    "send",
]

_CHUNK_BYTES = 64 * 1024


def send(
    request: OutboundRequest,
    *,
    allowed_hosts: Collection[str],
    deadline_seconds: float | None = None,
    max_response_bytes: int | None = None,
) -> OutboundResponse:
    """Send one request under the outbound rules and return its capped response."""
    started = time.monotonic()
    host = check_url(request.url, {host_key(allowed) for allowed in allowed_hosts})
    seconds = deadline_seconds or settings.OUTBOUND_DEADLINE_SECONDS
    cap = max_response_bytes
    if cap is None:
        cap = settings.OUTBOUND_MAX_RESPONSE_BYTES
    connect_seconds = min(settings.OUTBOUND_CONNECT_TIMEOUT_SECONDS, seconds)
    adapter = GuardedAdapter(allow_loopback=_loopback_allowed(host))
    response = None
    with Watchdog(seconds) as watchdog:
        try:
            response = adapter.send(
                _prepared(request),
                stream=True,
                timeout=(connect_seconds, seconds),
                verify=True,  # against verifying_context(): see GuardedAdapter.cert_verify
                cert=None,
                proxies={},
            )
            body, truncated = _read_capped(response, cap)
        except RefusedAddress:
            raise OutboundError("ssrf", errors.OUTBOUND_SSRF_REFUSED.format(host=host)) from None
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
            adapter.close()
        if watchdog.expired:
            # A body delimited by connection close looks complete once the watchdog cut it.
            raise OutboundError("timeout", _deadline_message(host, seconds))
    return OutboundResponse(
        status=response.status_code,
        headers={name.lower(): value for name, value in response.headers.items()},
        body=body,
        truncated=truncated,
        duration_ms=(time.monotonic() - started) * 1000,
    )


def _loopback_allowed(host: str) -> bool:
    """Loopback is refused unless tests switch it on, or settings name this very host and
    port (development's demo API: one address, not the rest of loopback)."""
    named = {host_key(entry) for entry in settings.OUTBOUND_LOOPBACK_HOSTS}
    return settings.OUTBOUND_ALLOW_LOOPBACK or host_key(host) in named


def _prepared(request: OutboundRequest) -> requests.PreparedRequest:
    # Built field by field: PreparedRequest.prepare() would re-encode the URL, add headers
    # of its own and frame the body its way, and what was signed must be what is sent.
    framed = request.framed()
    prepared = requests.PreparedRequest()
    prepared.method = framed.method
    prepared.url = framed.url
    prepared.headers = CaseInsensitiveDict(framed.headers)
    prepared.body = framed.body
    return prepared


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
    exc: Exception, host: str, watchdog: Watchdog, connect_seconds: float
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
