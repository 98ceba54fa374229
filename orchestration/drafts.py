"""Text a designer typed that failed validation, kept across a redirect so nothing is lost."""

from __future__ import annotations

# Far above any sample a person types; keeps a pasted megabyte out of the session row.
MAX_CHARS = 200_000


def _key(event_id: int) -> str:
    return f"sample-draft-{event_id}"


def sample_draft_keep(request, event_id: int, *, text: str, error: str) -> None:
    request.session[_key(event_id)] = {"text": text[:MAX_CHARS], "error": error}


def sample_draft_pop(request, event_id: int) -> dict | None:
    """Return the refused sample text and its error once, then forget them."""
    return request.session.pop(_key(event_id), None)
