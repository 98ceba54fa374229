"""What a header the app sends may be named: the rule forms, execution and cURL import share."""

from __future__ import annotations

import re

# An HTTP token (RFC 9110): what a header name may be.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Framing headers: the transport sets them from the request it sends. A designer's value
# would contradict it (a chunked body that is not chunked), so none is accepted.
HEADERS_SET_WHEN_SENT = frozenset({"host", "content-length", "transfer-encoding", "connection"})
HEADER_SET_WHEN_SENT = "{name} is set when the request is sent; remove this header."
