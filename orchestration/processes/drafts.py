"""Text a designer typed that failed validation, kept across a redirect so nothing is lost."""

from __future__ import annotations


def _key(event_id: int) -> str:
    return f"sample-draft-{event_id}"


def sample_draft_keep(request, event_id: int, *, text: str, error: str) -> None:
    # Whole: DATA_UPLOAD_MAX_MEMORY_SIZE already bounds what a request can carry.
    request.session[_key(event_id)] = {"text": text, "error": error}


def sample_draft_pop(request, event_id: int) -> dict | None:
    """Return the refused sample text and its error once, then forget them."""
    return request.session.pop(_key(event_id), None)
