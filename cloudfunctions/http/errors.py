"""What users are told when an outbound call or its authentication fails; tests import these.

Messages are built from the host and the failing stage only: the text of requests/urllib3
exceptions carries the full URL, query string included, where API keys may live.
"""

from __future__ import annotations

OUTBOUND_URL_NOT_HTTPS = "Refused to send the request: only https:// addresses are allowed."
OUTBOUND_URL_INVALID = "Refused to send the request: the address is not a valid https:// address."
OUTBOUND_URL_CREDENTIALS = (
    "Refused to send the request: the address contains credentials (user@host)."
)
OUTBOUND_HOST_NOT_ALLOWED = "Refused to connect to {host}: it is not a host of this connection."
OUTBOUND_DNS_FAILED = "Could not resolve the host name {host}."
OUTBOUND_SSRF_REFUSED = (
    "Refused to connect to {host}: it resolves to a private, loopback, link-local or "
    "reserved address."
)
OUTBOUND_CONNECT_FAILED = "Could not connect to {host}."
OUTBOUND_CONNECT_TIMEOUT = "{host} did not accept a connection within {seconds:g} seconds."
OUTBOUND_TLS_FAILED = (
    "The secure connection to {host} failed: its certificate is not trusted "
    "or the TLS handshake failed."
)
OUTBOUND_DEADLINE = "{host} did not answer completely within {seconds:g} seconds."
OUTBOUND_HEADER_UNSENDABLE = (
    "Could not send the request to {host}: a header holds characters HTTP does not allow "
    "(a line break, or text outside Latin-1)."
)
OUTBOUND_PROTOCOL = "{host} sent an invalid or incomplete HTTP response."

AUTH_TOKEN_REJECTED = "The token endpoint at {host} refused the request ({error})."
AUTH_TOKEN_HTTP_STATUS = "The token endpoint at {host} answered HTTP {status} instead of a token."
AUTH_TOKEN_REDIRECT = (
    "The token endpoint at {host} answered with a redirect (HTTP {status}); "
    "redirects are not followed."
)
AUTH_TOKEN_NOT_JSON = "The token endpoint at {host} did not answer with a JSON token."
AUTH_TOKEN_MISSING = "The token endpoint at {host} answered without an access token."
AUTH_TOKEN_BAD_EXPIRY = (
    "The token endpoint at {host} answered with an expiry that is not a number of seconds."
)
AUTH_TOKEN_TRUNCATED = "The token endpoint at {host} sent a response that is too large."
AUTH_REGION_UNKNOWN = "The region is not one where Amazon Connect is available."
