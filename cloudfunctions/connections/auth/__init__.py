"""Authentication schemes for outbound calls, one module each, behind ``AuthProvider``."""

from __future__ import annotations

from cloudfunctions.connections.auth.base import AuthError, AuthProvider

__all__ = ["AuthError", "AuthProvider"]
