"""Join a connection's base URL and a designer's URI without ever changing the host.

`urljoin(base, "//evil.example")` leaves the host, so nothing here uses urljoin: the
URI is percent-encoded as a path, `..` is refused, and the result is checked against
the base URL's scheme, host, port and path prefix.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from cloudfunctions.http import errors

URI_MUST_START_WITH_SLASH = 'The URI must start with "/", like "/v1/charges".'
URI_HAS_BACKSLASH = 'The URI cannot contain a backslash (\\); separate path segments with "/".'
URI_CLIMBS_OUT = 'The URI cannot contain ".." path segments.'
BASE_URL_INVALID = errors.OUTBOUND_URL_INVALID
URI_CHANGES_HOST = "The URI must be a path on the connection's base URL, not another address."

# Characters a path may keep as they are (RFC 3986 pchar plus "/"), and "%" for
# escapes the designer already wrote.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class UnsafeURI(ValueError):
    pass


def build_url(base_url: str, uri: str, query: list[tuple[str, str]]) -> str:
    """Return base_url + uri (+ query), or raise UnsafeURI."""
    # Some servers and proxies read a backslash as "/": none is sent, wherever it stands.
    if "\\" in uri:
        raise UnsafeURI(URI_HAS_BACKSLASH)
    if not uri.startswith("/") or uri.startswith("//"):
        raise UnsafeURI(
            URI_CHANGES_HOST if uri.startswith("//") or "://" in uri else URI_MUST_START_WITH_SLASH
        )
    path, _, inline_query = uri.partition("?")
    path = path.split("#", 1)[0]
    segments = unquote(path).split("/")
    # "..;x" is ".." to servers that strip path parameters first (Tomcat, Jetty).
    if any(segment.partition(";")[0] in ("..", ".") for segment in segments):
        raise UnsafeURI(URI_CLIMBS_OUT)
    path = quote(_BAD_ESCAPE.sub("%25", path), safe=_PATH_SAFE)
    base = urlsplit(base_url)
    try:
        base.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise UnsafeURI(BASE_URL_INVALID) from None
    full_path = base.path.rstrip("/") + path
    pairs = [quote(p, safe="=%+:@/,;!$'()*-._~") for p in inline_query.split("&") if p]
    if query:
        pairs.append(urlencode(query, quote_via=quote))
    url = urlunsplit((base.scheme, base.netloc, full_path, "&".join(pairs), ""))
    final = urlsplit(url)
    if (
        final.scheme != base.scheme
        or final.hostname != base.hostname
        or final.port != base.port
        or not final.path.startswith(base.path.rstrip("/") + "/")
    ):
        raise UnsafeURI(URI_CHANGES_HOST)
    return url
