"""Name the host of an https URL one way, and refuse a URL before any I/O."""

from __future__ import annotations

from urllib.parse import urlsplit

from cloudfunctions.http import errors
from cloudfunctions.http.request import OutboundError


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
    return display_host(parts.hostname, port)


def host_key(host: str) -> tuple[str, int]:
    """Return (hostname, port) of an allowed_hosts entry."""
    parts = urlsplit(f"//{host}")
    if not parts.hostname or parts.username is not None or parts.path:
        raise ValueError("allowed_hosts entries are host or host:port")
    return parts.hostname, parts.port or 443


def display_host(hostname: str, port: int) -> str:
    shown = f"[{hostname}]" if ":" in hostname else hostname
    return shown if port == 443 else f"{shown}:{port}"


def check_url(url: str | None, allowed: set[tuple[str, int]]) -> str:
    """Return the URL's host as messages name it, or raise OutboundError("url", ...)."""
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
    host = display_host(parts.hostname, port)
    if (parts.hostname, port) not in allowed:
        raise OutboundError("url", errors.OUTBOUND_HOST_NOT_ALLOWED.format(host=host))
    return host
