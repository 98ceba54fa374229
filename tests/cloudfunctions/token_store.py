"""A process-local TokenStore for the OAuth provider's own tests."""

from __future__ import annotations

import threading
import time
from typing import Any

from cloudfunctions.connections.auth.oauth2 import CachedToken


class MemoryTokenStore:
    """The TokenStore protocol in memory; ``put()`` replaces the token as a test arranges."""

    def __init__(self) -> None:
        self._cached = CachedToken(None, 0)
        self._lease_until = 0.0
        self._guard = threading.Lock()
        self._lock = threading.Lock()

    def load(self) -> CachedToken:
        with self._guard:
            token = self._cached.token
            return CachedToken(dict(token) if token else None, self._cached.version)

    def claim(self, version: int, seconds: float) -> bool:
        with self._guard:
            if version != self._cached.version or self._lease_until > time.monotonic():
                return False
            self._lease_until = time.monotonic() + seconds
            return True

    def save(self, token: dict[str, Any], version: int) -> bool:
        with self._guard:
            if version != self._cached.version:
                return False
            self._cached = CachedToken(dict(token), version + 1)
            self._lease_until = 0.0
            return True

    def release(self, version: int) -> None:
        with self._guard:
            if version == self._cached.version:
                self._lease_until = 0.0

    def lock(self) -> threading.Lock:
        return self._lock

    def put(self, token: dict[str, Any]) -> None:
        self.save(token, self.load().version)

    @property
    def token(self) -> dict[str, Any] | None:
        return self.load().token
