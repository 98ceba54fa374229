"""The values that cross the outbound boundary: the request to send, its answer, its failure.

Auth providers, the step and the connection probe build and transform ``OutboundRequest``;
only the transport turns one into bytes on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from orchestration.validators import is_ascii_digits

# Methods for which HTTP/1.1 clients send "Content-Length: 0" when there is no body
# (http.client and urllib3 agree): the framing below writes it so a signature can cover it.
_METHODS_EXPECTING_BODY = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class OutboundRequest:
    """One HTTP request, immutable: every change returns a new request."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def __post_init__(self) -> None:
        if self.body is not None and not isinstance(self.body, bytes):
            raise TypeError("an outbound body is bytes or None")
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def __repr__(self) -> str:
        # Header values and the query string may hold credentials.
        return f"<OutboundRequest {self.method} {self.url.partition('?')[0]}>"

    def with_header(self, name: str, value: str) -> OutboundRequest:
        """Return the request with ``name`` set to ``value``, replacing it in any case."""
        return replace(self, headers={**self.without_headers(name).headers, name: value})

    def without_headers(self, *names: str) -> OutboundRequest:
        """Return the request without the named headers, whatever their case."""
        lowered = {name.lower() for name in names}
        kept = {k: v for k, v in self.headers.items() if k.lower() not in lowered}
        return replace(self, headers=kept)

    def with_url(self, url: str) -> OutboundRequest:
        return replace(self, url=url)

    def framed(self) -> OutboundRequest:
        """Return the request with the Content-Length it is sent with; idempotent."""
        request = self.without_headers("content-length")
        if self.body is not None:
            return request.with_header("Content-Length", str(len(self.body)))
        if self.method in _METHODS_EXPECTING_BODY:
            return request.with_header("Content-Length", "0")
        return request


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    truncated: bool
    duration_ms: float


class OutboundError(Exception):
    """An outbound call failed; ``message`` is safe to show (no URL query, headers or secrets)."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage
        self.message = message

    def __repr__(self) -> str:
        return f"OutboundError({self.stage!r}, {self.message!r})"


def retry_after_seconds(value: str | None) -> float | None:
    """Read a Retry-After header given in seconds; None when absent or an HTTP date (which
    would need a clock both sides agree on)."""
    value = (value or "").strip()
    return float(value) if is_ascii_digits(value) else None
