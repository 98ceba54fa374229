"""The interface every authentication scheme implements."""

from __future__ import annotations

from typing import Protocol

from cloudfunctions.http.request import OutboundRequest


class AuthError(Exception):
    """Credentials could not be obtained or applied; ``message`` never holds a secret."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage  # "config" (bad settings) or "token" (token endpoint failed)
        self.message = message

    def __repr__(self) -> str:
        return f"AuthError({self.stage!r}, {self.message!r})"


class AuthProvider(Protocol):
    def apply(self, request: OutboundRequest) -> OutboundRequest:
        """Return the request with credentials added, ready to send unchanged."""

    def secrets(self) -> list[str]:
        """Return every secret value in play, so callers can redact captured output."""

    def renew(self) -> bool:
        """Renew credentials after a 401; return whether one retry may now succeed."""
