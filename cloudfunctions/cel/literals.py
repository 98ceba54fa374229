"""Write CEL literals: the one place that knows how CEL spells a string."""

from __future__ import annotations

__all__ = ["cel_string_literal"]

# Escapes CEL reads back as the same character; every other control character (C0, DEL
# and C1) is spelled \uXXXX so a literal stays on one printable line in the editor.
_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r"}
_ESCAPES[ord("\t")] = "\\t"
for _code in (*range(0x20), *range(0x7F, 0xA0)):
    _ESCAPES.setdefault(_code, f"\\u{_code:04x}")


def cel_string_literal(text: str) -> str:
    """Return a CEL string literal that evaluates to exactly `text`."""
    # str.translate is one pass in C: linear in the text, however awkward it is.
    return '"' + text.translate(_ESCAPES) + '"'
