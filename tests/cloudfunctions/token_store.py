"""A process-local token store for provider tests (the product keeps tokens on the connection)."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any


class MemoryTokenStore:
    """A process-local TokenStore."""

    def __init__(self) -> None:
        self._token: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "<MemoryTokenStore>"

    def load(self) -> dict[str, Any] | None:
        return dict(self._token) if self._token else None

    def save(self, token: dict[str, Any]) -> None:
        self._token = dict(token)

    def lock(self) -> AbstractContextManager[object]:
        return self._lock
