"""Write a stored request (already masked) as a curl command the designer can copy."""

from __future__ import annotations

import shlex


def to_curl(request: dict) -> str:
    """Return a copyable curl command for a stored (masked) request."""
    if not request:
        return ""
    parts = ["curl", "-X", request.get("method", "GET"), shlex.quote(request.get("url", ""))]
    for name, value in (request.get("headers") or {}).items():
        if name.lower() in ("content-length",):
            continue
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if request.get("body"):
        parts += ["--data-raw", shlex.quote(request["body"])]
    return " ".join(parts)
