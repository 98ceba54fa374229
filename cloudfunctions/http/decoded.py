"""Decoded views of a text: what it says once escapes are undone, and where each part came from.

An echo may spell a secret percent-encoded, JSON- or HTML-escaped (or both, JSON shown in a
page), with "+" for space, or wrapped over lines; searching the decoded text for the plain
secret finds every such spelling at once, and ``raw_span`` says what to mask in the original.
"""

from __future__ import annotations

import functools
import html
import re
from bisect import bisect_right
from collections.abc import Callable

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


@functools.lru_cache(maxsize=4096)
def _decoded(token: str) -> str:
    """Return what one escape stands for (answers repeat the same few escapes)."""
    first = token[0]
    if first == "\\":
        if token[1] in "ux":
            if len(token) == 12:  # a surrogate pair: one character beyond the BMP
                high, low = int(token[2:6], 16), int(token[8:12], 16)
                return chr(0x10000 + ((high - 0xD800) << 10) + low - 0xDC00)
            return chr(int(token[2:], 16))
        return _SHORT_ESCAPES.get(token[1], token[1])
    if first == "%":
        return bytes.fromhex(token.replace("%", "")).decode("utf-8", "replace")
    if first == "+":
        return " "
    try:
        return html.unescape(token)
    except (ValueError, OverflowError):
        return token


def _token(match: re.Match) -> str:
    return _decoded(match.group())


# name: (characters without which there is nothing to decode, token pattern, replacement)
_DECODERS: dict[str, tuple[str, re.Pattern, Callable[[re.Match], str] | str]] = {
    # JSON escapes, percent-escapes and HTML entities in one pass: an echo may mix them.
    "escapes": (
        "\\%&",
        re.compile(f"{_JSON_ESCAPE.pattern}|{_PERCENT.pattern}|{_ENTITY.pattern}"),
        _token,
    ),
    # Each kind alone as well: undoing "\\/" in an HTML-escaped echo would spoil a secret
    # that holds a backslash.
    "json": ("\\", _JSON_ESCAPE, _token),
    "percent": ("%", _PERCENT, _token),
    "html": ("&", _ENTITY, _token),
    "form": ("+", _PERCENT_PLUS, _token),
    # Taken out with str.replace: pretty-printed answers hold very many line breaks.
    "lines": ("\n\r", _LINE_BREAK, ""),
}


class View:
    """A decoded text, and where each of its spans came from in the text it decodes.

    The decoded text is made in one pass; where its spans came from is worked out only
    when a secret is found in it, which is rare.
    """

    def __init__(self, text: str, decoder: str, parent: View | None):
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


def views(text: str) -> list[tuple[str, View | None]]:
    """Return the text itself and its decodings: escapes undone once and twice (JSON shown
    in HTML), each kind alone, "+" read as a space, and line breaks (which wrap base64 and
    hex) taken out."""
    views: list[tuple[str, View | None]] = [(text, None)]

    def add(source: str, parent: View | None, decoder: str) -> View | None:
        if not any(char in source for char in _DECODERS[decoder][0]):
            return None
        view = View(source, decoder, parent)
        if view.text == source:
            return None
        views.append((view.text, view))
        return view

    once = add(text, None, "escapes")
    if once is not None:
        twice = add(once.text, once, "escapes")
        add(once.text, once, "lines")
        if twice is not None:
            add(twice.text, twice, "lines")
    kinds = [kind for kind in ("json", "percent", "html") if _DECODERS[kind][0] in text]
    if len(kinds) > 1:  # else the one kind is what "escapes" undid
        for kind in kinds:
            add(text, None, kind)
    add(text, None, "form")
    add(text, None, "lines")
    return views
