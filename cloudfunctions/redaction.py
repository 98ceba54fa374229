"""Replace every secret in play wherever it appears: captures, the request as shown, errors."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "••••••"


class Redactor:
    """Knows the secrets of one call, in every spelling they may travel in."""

    def __init__(self, secrets: Iterable[object] = ()):
        self._spellings: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: object) -> None:
        """Register one more secret (a token fetched during the call, say); ignore non-text."""
        if not isinstance(secret, str) or not secret:
            return
        spellings = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
        spellings.add(base64.b64encode(secret.encode()).decode().rstrip("="))
        # Longest first, so a secret containing another is masked whole.
        self._spellings = sorted(set(self._spellings) | spellings, key=len, reverse=True)

    def text(self, value: str) -> str:
        for spelling in self._spellings:
            if spelling in value:
                value = value.replace(spelling, MASK)
        return value

    def __call__(self, value: Any) -> Any:
        """Return value with every secret masked, recursing into dicts and lists."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value
