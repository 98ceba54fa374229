"""What a connection's addresses must look like: the models' validators and their messages."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from cloudfunctions.http.ip_filter import is_refused, literal_address

URL_NOT_HTTPS = "Enter an address of the form https://host[:port][/path]."
URL_HAS_CREDENTIALS = "Do not put credentials in the address; use the authentication settings."
URL_HAS_QUERY_OR_FRAGMENT = "The address cannot have a query string (?…) or a fragment (#…)."
# One message for every address the transport would refuse, however it is spelled.
URL_PRIVATE_ADDRESS = (
    "Enter a public address: this one is private, loopback, link-local or reserved, "
    "and requests are never sent there."
)

_HOST = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def validate_https_url(value: str) -> None:
    """Accept only https://host[:port][/path]: no credentials, query or fragment."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(URL_NOT_HTTPS, code="invalid") from exc
    if parts.scheme != "https" or not parts.hostname or not value.startswith("https://"):
        raise ValidationError(URL_NOT_HTTPS, code="scheme")
    if "@" in parts.netloc:
        raise ValidationError(URL_HAS_CREDENTIALS, code="credentials")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValidationError(URL_HAS_QUERY_OR_FRAGMENT, code="query")
    host = parts.hostname
    if not (_HOST.match(host) or _is_bracketed_ipv6(parts.netloc)):
        raise ValidationError(URL_NOT_HTTPS, code="host")
    if port == 0:
        raise ValidationError(URL_NOT_HTTPS, code="port")
    address = literal_address(host)
    if address is not None and is_refused(address, allow_loopback=settings.OUTBOUND_ALLOW_LOOPBACK):
        raise ValidationError(URL_PRIVATE_ADDRESS, code="private")
    if any(c.isspace() for c in value) or "\\" in value:
        raise ValidationError(URL_NOT_HTTPS, code="invalid")


def _is_bracketed_ipv6(netloc: str) -> bool:
    return netloc.startswith("[")
