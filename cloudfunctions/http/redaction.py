"""Replace every secret in play wherever it appears: captures, the request as shown, errors.

An API may echo what it received in any spelling: raw, percent-encoded, JSON- or HTML-escaped,
base64 at any byte offset (inside a longer encoded run), hex, line-wrapped, or a mix of these.
Rather than list every spelling of every secret, the text is *decoded* into a few views
(one decoder, or two in a row), the plain forms of each secret (the text, its base64 runs,
its hex) are found in every view, and each hit is mapped back to the span of the original
text it came from, which is masked.
"""

from __future__ import annotations

import base64
import binascii
import html
import math
import re
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from orchestration import log_filters

MASK = "••••••"
# Below this length a secret is masked only where a whole value equals it: masking every
# "abc" inside a capture would corrupt it and hide nothing (the connection form refuses them).
MIN_SECRET_LENGTH = 8
# Shorter starts of a secret at the end of a cut text are too common to mask, and tell little.
MIN_CUT_PREFIX = 4
# Separates the strings of a structure searched in one pass; JSON text cannot hold it.
_SEP = "\x00"

_JSON_ESCAPE = re.compile(
    r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})|\\([\\/\"'bfnrt])"
)
_SHORT_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
# One UTF-8 character, percent-encoded; a stray escape stands for a byte that is not text.
_PERCENT = re.compile(
    r"%(?:[0-7][0-9a-fA-F]|[c-dC-D][0-9a-fA-F]%[89abAB][0-9a-fA-F]"
    r"|[eE][0-9a-fA-F](?:%[89abAB][0-9a-fA-F]){2}|[fF][0-7](?:%[89abAB][0-9a-fA-F]){3}"
    r"|[0-9a-fA-F]{2})"
)
_PERCENT_PLUS = re.compile(_PERCENT.pattern + r"|\+")
_ENTITY = re.compile(r"&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,7}|[A-Za-z][A-Za-z0-9]{1,31});?")
_LINE_BREAK = re.compile(r"[\r\n]+")
# A text cut inside an escape: the start of an escape that a decoder cannot read yet.
_PARTIAL_ESCAPE = re.compile(
    r"(?:%[0-9a-fA-F]?|\\(?:u[0-9a-fA-F]{0,3}|x[0-9a-fA-F]?)?|&#?[xX]?[0-9A-Za-z]{0,31})\Z"
)


def _json_token(match: re.Match) -> str:
    high, low, code, byte, short = match.groups()
    if high:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00)
    if code or byte:
        return chr(int(code or byte, 16))
    return _SHORT_ESCAPES.get(short, short)


def _percent_token(match: re.Match) -> str:
    token = match.group()
    if token == "+":
        return " "
    return bytes.fromhex(token.replace("%", "")).decode("utf-8", "replace")


def _entity_token(match: re.Match) -> str:
    try:
        return html.unescape(match.group())
    except (ValueError, OverflowError):
        return match.group()


# name: (what may need decoding, token pattern, decoded text of one token)
_DECODERS: dict[str, tuple[str, re.Pattern, Callable[[re.Match], str] | str]] = {
    "json": ("\\", _JSON_ESCAPE, _json_token),
    "percent": ("%", _PERCENT, _percent_token),
    "form": ("+", _PERCENT_PLUS, _percent_token),
    "html": ("&", _ENTITY, _entity_token),
    # Taken out with str.replace: pretty-printed answers hold very many line breaks.
    "lines": ("\n\r", _LINE_BREAK, ""),
}


class _View:
    """A decoded text, and where each of its spans came from in the text it decodes.

    The decoded text is made in one pass; where its spans came from is worked out only
    when a secret is found in it, which is rare.
    """

    def __init__(self, text: str, decoder: str, parent: _View | None):
        _, self._pattern, self._decode = _DECODERS[decoder]
        self._source = text
        self.parent = parent
        if decoder == "lines":
            self.text = text.replace("\r", "").replace("\n", "")
        else:
            self.text = self._pattern.sub(self._decode, text)
        self._map: tuple[list[int], list[int], list[int], list[int]] | None = None

    def _tokens(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """Per token: its start and end in the decoded text and in the text it decodes."""
        if self._map is None:
            starts, ends, raw_starts, raw_ends = [], [], [], []
            shift = 0  # decoded position minus source position so far
            for match in self._pattern.finditer(self._source):
                start, end = match.span()
                decode = self._decode
                length = len(decode if isinstance(decode, str) else decode(match))
                starts.append(start + shift)
                ends.append(start + shift + length)
                raw_starts.append(start)
                raw_ends.append(end)
                shift += length - (end - start)
            self._map = starts, ends, raw_starts, raw_ends
        return self._map

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """Return the span of the original text that decodes to text[start:end]."""
        starts, ends, raw_starts, raw_ends = self._tokens()
        j = bisect_right(starts, start) - 1
        if j < 0:
            raw_start = start
        elif start < ends[j]:
            raw_start = raw_starts[j]
        else:
            raw_start = raw_ends[j] + start - ends[j]
        j = bisect_right(starts, end - 1) - 1
        if j < 0:
            raw_end = end
        elif end - 1 < ends[j]:
            raw_end = raw_ends[j]
        else:
            raw_end = raw_ends[j] + end - ends[j]
        if self.parent is not None:
            return self.parent.raw_span(raw_start, raw_end)
        return raw_start, raw_end


def _views(text: str) -> list[tuple[str, _View | None]]:
    """Return the text itself and every decoding of it: one decoder, or two in a row (line
    breaks, which only wrap base64 and hex, are taken out last)."""
    views: list[tuple[str, _View | None]] = [(text, None)]
    for first, (trigger, _, _) in _DECODERS.items():
        if not any(char in text for char in trigger):
            continue
        view = _View(text, first, None)
        if view.text == text:
            continue
        views.append((view.text, view))
        if first == "lines":
            continue
        for second, (trigger2, _, _) in _DECODERS.items():
            if second == first or not any(char in view.text for char in trigger2):
                continue
            inner = _View(view.text, second, view)
            if inner.text != view.text:
                views.append((inner.text, inner))
    return views


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
        for decoded, view in _views(text):
            for form in forms:
                at = decoded.find(form)
                while at >= 0:
                    end = at + len(form)
                    found.append(view.raw_span(at, end) if view else (at, end))
                    at = decoded.find(form, end)
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
        partial = _PARTIAL_ESCAPE.search(value)
        whole = value[: partial.start()] if partial else value
        cut = len(whole)
        for decoded, view in _views(whole):
            for form in self._forms:
                for length in range(min(len(form) - 1, len(decoded)), MIN_CUT_PREFIX - 1, -1):
                    if decoded.endswith(form[:length]):
                        start = len(decoded) - length
                        cut = min(cut, view.raw_span(start, len(decoded))[0] if view else start)
                        break
        if cut == len(whole):
            return value
        return whole[:cut] + MASK

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
