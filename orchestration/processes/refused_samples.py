"""A sample payload the designer typed that was refused, kept across a redirect so the step
editor shows it again beside its error instead of losing it."""

from __future__ import annotations


def _key(event_id: int) -> str:
    return f"refused-sample-{event_id}"


def refused_sample_keep(request, event_id: int, *, text: str, error: str) -> None:
    # Whole: DATA_UPLOAD_MAX_MEMORY_SIZE already bounds what a request can carry.
    request.session[_key(event_id)] = {"text": text, "error": error}


def refused_sample_pop(request, event_id: int) -> dict | None:
    """Return the refused sample text and its error once, then forget them."""
    return request.session.pop(_key(event_id), None)
