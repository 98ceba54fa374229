"""Replace every secret in play wherever it appears: captures, the request as shown, errors."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "••••••"
# Shorter starts of a secret at the end of a cut text are too common to mask, and tell little.
MIN_CUT_PREFIX = 4
_LOWER_ESCAPE = re.compile(r"%[0-9A-F]{2}")


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
        # Percent-escapes are case-insensitive: an API may echo "%2f" for our "%2F".
        spellings |= {_LOWER_ESCAPE.sub(lambda m: m.group().lower(), s) for s in spellings}
        spellings.add(base64.b64encode(secret.encode()).decode().rstrip("="))
        # Longest first, so a secret containing another is masked whole.
        self._spellings = sorted(set(self._spellings) | spellings, key=len, reverse=True)

    def text(self, value: str) -> str:
        for spelling in self._spellings:
            if spelling in value:
                value = value.replace(spelling, MASK)
        return value

    def cut_text(self, value: str) -> str:
        """Mask a text cut off at a size cap, where a secret may end half-way: the start of
        one at the very end is masked too."""
        value = self.text(value)
        cut = 0  # the longest start of any spelling the text ends with
        for spelling in self._spellings:
            for length in range(
                min(len(spelling) - 1, len(value)), max(cut, MIN_CUT_PREFIX - 1), -1
            ):
                if value.endswith(spelling[:length]):
                    cut = length
                    break
        return value[:-cut] + MASK if cut else value

    def __call__(self, value: Any) -> Any:
        """Return value with every secret masked, recursing into dicts and lists."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value
