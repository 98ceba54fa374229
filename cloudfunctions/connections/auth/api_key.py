"""An API key sent in a header or in a query parameter."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit

from cloudfunctions.http.request import OutboundRequest


class ApiKeyAuth:
    """Put ``name=value`` in a request header or in the query string."""

    def __init__(self, *, name: str, value: str, location: Literal["header", "query"]):
        if location not in ("header", "query"):
            raise ValueError("location is 'header' or 'query'")
        self.name = name
        self._value = value
        self.location = location

    def __repr__(self) -> str:
        return f"<ApiKeyAuth {self.location} {self.name!r}>"

    def apply(self, request: OutboundRequest) -> OutboundRequest:
        """Add the key, replacing any header or parameter of the same name."""
        if self.location == "header":
            return request.with_header(self.name, self._value)
        parts = urlsplit(request.url)
        # A designer-supplied parameter of the same name must not shadow the key.
        kept = [
            p for p in parts.query.split("&") if p and unquote_plus(p.split("=")[0]) != self.name
        ]
        kept.append(urlencode({self.name: self._value}, quote_via=quote))
        return request.with_url(urlunsplit(parts._replace(query="&".join(kept))))

    def secrets(self) -> list[str]:
        return [self._value]

    def renew(self) -> bool:
        return False
