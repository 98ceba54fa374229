"""Replace every secret in play wherever it appears: captures, the request as shown, errors.

An API may echo what it received in any spelling: raw, percent-encoded, JSON- or HTML-escaped,
base64 at any byte offset (inside a longer encoded run), hex, line-wrapped, or a mix of these.
Rather than list every spelling of every secret, the text is *decoded* into a few views
(cloudfunctions.http.decoded), the plain forms of each secret (the text, its base64 runs, its
hex) are found in every view, and each hit is mapped back to the span of the original text it
came from, which is masked.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import threading
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from cloudfunctions.http import decoded
from orchestration import log_filters

MASK = "••••••"
# Below this length a secret is masked only where a whole value equals it: masking every
# "abc" inside a capture would corrupt it and hide nothing (the connection form refuses them).
MIN_SECRET_LENGTH = 8
# Shorter starts of a secret at the end of a cut text are too common to mask, and tell little.
MIN_CUT_PREFIX = 4
# Separates the strings of a structure searched in one pass; JSON text cannot hold it.
_SEP = "\x00"

# The most characters one character of a secret takes when escaped twice ("&amp;#x10FFFF;").
_WIDEST_ESCAPE = 16
# A text cut inside an escape: the start of an escape that a decoder cannot read yet.
_PARTIAL_ESCAPE = re.compile(
    r"(?:%[0-9a-fA-F]?|\\(?:u[0-9a-fA-F]{0,3}|x[0-9a-fA-F]?)?|&#?[xX]?[0-9A-Za-z]{0,31})\Z"
)


def _base64_runs(data: bytes) -> set[str]:
    """Return the part of base64 that is fixed by ``data`` alone, wherever it starts in a
    longer encoded run: one for each of the three alignments, in both alphabets."""
    runs = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).decode()
        # Character i encodes bits [6i, 6i+6) of the run; keep those inside the data.
        first = math.ceil(8 * offset / 6)
        last = (8 * (offset + len(data))) // 6
        run = encoded[first:last]
        runs |= {run, run.replace("+", "-").replace("/", "_")}
    return runs


def _forms(secret: str) -> set[str]:
    """Return the plain forms of a secret that decoded views are searched for."""
    data = secret.encode("utf-8", "surrogatepass")
    hexed = binascii.hexlify(data).decode()
    return {secret, hexed, hexed.upper()} | _base64_runs(data)


def _whole_spellings(secret: str) -> set[str]:
    """Return the spellings of a short secret that a whole value may be equal to."""
    data = secret.encode("utf-8", "surrogatepass")
    encoded = base64.b64encode(data).decode()
    hexed = binascii.hexlify(data).decode()
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        encoded,
        encoded.rstrip("="),
        hexed,
        hexed.upper(),
    }


def _number(secret: str) -> int | float | None:
    """Return the number a secret spells, if it is one (it may be echoed as a JSON number)."""
    try:
        return int(secret)
    except ValueError:
        pass
    try:
        value = float(secret)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class Redactor:
    """Knows the secrets of one call, in every spelling they may travel in.

    While it lives and holds secrets, the log filter masks them too (orchestration.log_filters).
    """

    def __init__(self, secrets: Iterable[object] = ()):
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._forms: tuple[str, ...] = ()
        self._exact: frozenset[str] = frozenset()
        self._numbers: frozenset[int | float] = frozenset()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: object) -> None:
        """Register one more secret (a token fetched during the call, say); ignore non-text."""
        if not isinstance(secret, str) or not secret or secret in self._secrets:
            return
        with self._lock:
            # New tuples, swapped in whole: a log filter on another thread may be reading.
            self._secrets = self._secrets | {secret}
            number = _number(secret)
            if number is not None:
                self._numbers = self._numbers | {number}
            if len(secret) < MIN_SECRET_LENGTH:
                self._exact = self._exact | _whole_spellings(secret)
            else:
                forms = set(self._forms) | _forms(secret)
                self._exact = self._exact | {secret}
                # Longest first, so that a cut text is masked from the longest start found.
                self._forms = tuple(sorted(forms, key=len, reverse=True))
        log_filters.register(self)

    def add_authorization(self, value: object) -> None:
        """Register the Authorization value sent, its credentials and what Basic encodes."""
        if not isinstance(value, str) or not value:
            return
        self.add(value)
        scheme, _, credentials = value.partition(" ")
        self.add(credentials.strip())
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, ValueError):
                return
            self.add(decoded)

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Return the spans of text that spell a secret, merged and in order."""
        forms = self._forms
        found: list[tuple[int, int]] = []
        if not forms or not text:
            return found
        for plain, view in decoded.views(text):
            for form in forms:
                at = plain.find(form)
                while at >= 0:
                    end = at + len(form)
                    found.append(view.raw_span(at, end) if view else (at, end))
                    at = plain.find(form, end)
        return _merged(found)

    def text(self, value: str) -> str:
        """Return value with every spelling of every secret masked."""
        if value in self._exact:
            return MASK
        return _masked(value, self._spans(value))

    def cut_text(self, value: str) -> str:
        """Mask a text cut off at a size cap, where a secret may end half-way: the start of
        one at the very end is masked too, in whatever spelling it was on its way."""
        value = self.text(value)
        if not self._forms:
            return value
        partial = _PARTIAL_ESCAPE.search(value)
        whole = value[: partial.start()] if partial else value
        # Only the end can hold a start: as far back as the longest form, every character
        # of it escaped twice, could reach.
        window = max(map(len, self._forms)) * _WIDEST_ESCAPE + len(_PARTIAL_ESCAPE.pattern)
        skipped = max(0, len(whole) - window)
        tail = whole[skipped:]
        cut = len(tail)
        for plain, view in decoded.views(tail):
            for form in self._forms:
                for length in range(min(len(form) - 1, len(plain)), MIN_CUT_PREFIX - 1, -1):
                    if plain.endswith(form[:length]):
                        start = len(plain) - length
                        cut = min(cut, view.raw_span(start, len(plain))[0] if view else start)
                        break
        if cut == len(tail):
            return value
        return whole[: skipped + cut] + MASK

    def __call__(self, value: Any) -> Any:
        """Return value with every secret masked in its strings, keys and numbers; containers
        are walked without recursion, however deep."""
        strings, numbers = _leaves(value)
        if not self._secrets or (not strings and not numbers):
            return value
        replaced: dict[str, str] = {}
        for string in strings:
            if string in self._exact:
                replaced[string] = MASK
        texts = [s for s in strings if s not in replaced]
        masked_numbers = {n for n in numbers if self._is_secret_number(n)}
        others = [n for n in numbers if n not in masked_numbers]
        items = texts + [_number_text(n) for n in others]
        if self._forms and items:
            # One search of everything; only the strings it hits are masked one by one.
            bounds = _bounds(items)
            for start, _ in self._spans(_SEP.join(items)):
                index = bisect_right(bounds, start) - 1
                if index < len(texts):
                    replaced.setdefault(texts[index], "")
                else:
                    masked_numbers.add(others[index - len(texts)])
        for string, result in list(replaced.items()):
            if not result:
                replaced[string] = self.text(string)
        if not replaced and not masked_numbers:
            return value
        return _rebuilt(value, replaced, masked_numbers)

    def _is_secret_number(self, number: int | float) -> bool:
        if number not in self._numbers:
            return False
        # A long secret is masked only as a number at least as long: "00000000" is no 0.
        return any(
            len(secret) < MIN_SECRET_LENGTH or len(_number_text(number)) >= MIN_SECRET_LENGTH
            for secret in self._secrets
            if _number(secret) == number
        )

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        """Return headers with secrets masked in names and values."""
        return {self.text(name): self.text(value) for name, value in headers.items()}


def _number_text(number: int | float) -> str:
    return repr(number)


def _bounds(items: list[str]) -> list[int]:
    """Return where each item starts in _SEP.join(items)."""
    bounds, at = [], 0
    for item in items:
        bounds.append(at)
        at += len(item) + 1
    return bounds


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    pieces, done = [], 0
    for start, end in spans:
        pieces.append(text[done:start])
        pieces.append(MASK)
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _leaves(value: Any) -> tuple[list[str], list[int | float]]:
    """Return the distinct strings (keys included) and numbers in value, walked iteratively."""
    strings: dict[str, None] = {}
    numbers: dict[int | float, None] = {}
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            strings[item] = None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif _is_number(item):
            numbers[item] = None
    return list(strings), list(numbers)


def _rebuilt(value: Any, strings: dict[str, str], numbers: set) -> Any:
    """Return a copy of value with strings and numbers replaced, without recursion."""

    def leaf(item: Any) -> Any:
        if isinstance(item, str):
            return strings.get(item, item)
        if _is_number(item) and item in numbers:
            return MASK
        return item

    if not isinstance(value, dict | list | tuple):
        return leaf(value)
    root: Any = {} if isinstance(value, dict) else []
    # Each frame: the container being copied, its copy, and the items still to copy.
    stack = [(root, iter(value.items() if isinstance(value, dict) else value))]
    while stack:
        copy, items = stack[-1]
        for item in items:
            key, item = item if isinstance(copy, dict) else (None, item)
            if isinstance(item, dict | list | tuple):
                child: Any = {} if isinstance(item, dict) else []
                _put(copy, leaf(key), child)
                stack.append((child, iter(item.items() if isinstance(item, dict) else item)))
                break
            _put(copy, leaf(key), leaf(item))
        else:
            stack.pop()
    return root


def _put(container: Any, key: Any, item: Any) -> None:
    if isinstance(container, dict):
        container[key] = item
    else:
        container.append(item)
