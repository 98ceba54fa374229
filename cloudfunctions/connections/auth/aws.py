"""AWS Signature Version 4 for Amazon Connect, signed by botocore."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cloudfunctions import amazon_connect
from cloudfunctions.connections.auth.base import AuthError
from cloudfunctions.http import errors
from cloudfunctions.http.request import OutboundRequest

SERVICE = amazon_connect.SERVICE


def is_reserved_header(name: str) -> bool:
    """Return whether a header belongs to the signature and must not come from a designer."""
    lowered = name.strip().lower()
    return lowered in ("host", "authorization") or lowered.startswith("x-amz-")


class AwsSigV4Auth:
    """Sign requests for the ``connect`` service with an access key."""

    def __init__(
        self,
        *,
        access_key_id: str,
        secret_access_key: str,
        region: str,
    ):
        if not amazon_connect.is_region(region):
            raise AuthError("config", errors.AUTH_REGION_UNKNOWN)
        self.access_key_id = access_key_id
        self.region = region
        self._credentials = Credentials(access_key_id, secret_access_key)

    def __repr__(self) -> str:
        return f"<AwsSigV4Auth {self.access_key_id!r} in {self.region}>"

    def apply(self, request: OutboundRequest) -> OutboundRequest:
        """Sign the request; the URL, headers and body it returns are exactly those sent."""
        # Framed first: Content-Length is signed, so it must be the one the transport sends.
        framed = request.with_url(_sigv4_url(request.url)).framed()
        headers = {
            name: value for name, value in framed.headers.items() if not is_reserved_header(name)
        }
        # The guarded adapter sends this very Host value; botocore would drop an explicit :443.
        headers["Host"] = _host_header(framed.url)
        signed = AWSRequest(
            method=framed.method, url=framed.url, headers=headers, data=framed.body or b""
        )
        SigV4Auth(self._credentials, SERVICE, self.region).add_auth(signed)
        return OutboundRequest(
            framed.method, framed.url, headers=dict(signed.headers.items()), body=framed.body
        )

    def secrets(self) -> list[str]:
        return [self._credentials.secret_key]

    def renew(self) -> bool:
        return False


def _sigv4_url(url: str) -> str:
    # botocore puts the query into the canonical request as sent, while AWS re-encodes what
    # it receives per RFC 3986 (%20, not +): send the query already in that form.
    parts = urlsplit(url)
    query = urlencode(parse_qsl(parts.query, keep_blank_values=True), quote_via=quote, safe="~")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
    return host if parts.port is None else f"{host}:{parts.port}"
