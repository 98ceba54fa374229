"""Spellings a hostile API may echo a secret in, and a detector for any of them in a text.

Written from the standard library alone (not from the redactor), so that the tests check the
redactor against an independent idea of what an echo looks like.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Callable
from urllib.parse import quote, quote_plus


def _lower_escapes(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def _json_inner(text: str, ensure_ascii: bool = True) -> str:
    return json.dumps(text, ensure_ascii=ensure_ascii)[1:-1]


def _go_json(text: str) -> str:
    # Go's encoding/json escapes <, > and & as \u003c, \u003e and \u0026.
    inner = _json_inner(text, ensure_ascii=False)
    return inner.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _all_unicode_escapes(text: str) -> str:
    return "".join(
        f"\\u{unit:04x}"
        for unit in (
            int.from_bytes(text.encode("utf-16-be")[i : i + 2], "big")
            for i in range(0, len(text.encode("utf-16-be")), 2)
        )
    )


def _all_entities(text: str) -> str:
    return "".join(f"&#{ord(char)};" for char in text)


def _hex_entities(text: str) -> str:
    return "".join(f"&#X{ord(char):X};" for char in text)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# name: encode the whole echoed text (prefix + secret + suffix)
ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda t: t,
    "percent": lambda t: quote(t, safe=""),
    "percent, lower case": lambda t: _lower_escapes(quote(t, safe="")),
    "percent, slash kept": lambda t: quote(t),
    "form (+ for space)": quote_plus,
    "JSON": _json_inner,
    "JSON, raw Unicode": lambda t: _json_inner(t, ensure_ascii=False),
    "JSON, \\/ escapes": lambda t: _json_inner(t).replace("/", "\\/"),
    "JSON, every char \\u": _all_unicode_escapes,
    "JSON, Go style": _go_json,
    "HTML": html.escape,
    "HTML, &#039;": lambda t: html.escape(t).replace("&#x27;", "&#039;"),
    "HTML, decimal entities": _all_entities,
    "HTML, hex entities": _hex_entities,
    "base64": _b64,
    "base64, unpadded": lambda t: _b64(t).rstrip("="),
    "base64url": lambda t: base64.urlsafe_b64encode(t.encode()).decode(),
    "base64, MIME lines": lambda t: base64.encodebytes(t.encode()).decode(),
    "base64 in JSON with \\/": lambda t: _b64(t).replace("/", "\\/"),
    "base64, percent-encoded": lambda t: quote(_b64(t), safe=""),
    "hex": lambda t: binascii.hexlify(t.encode()).decode(),
    "HEX": lambda t: binascii.hexlify(t.encode()).decode().upper(),
    "JSON in HTML": lambda t: html.escape(_json_inner(t)),
}


def _fixed_base64(secret: bytes, offset: int, urlsafe: bool) -> str:
    """The characters of base64(prefix + secret + suffix) that the secret alone decides,
    found by encoding it between two different fillers and keeping what they share."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    one = encode(b"\x00" * offset + secret + b"\x00\x00").decode()
    two = encode(b"\xff" * offset + secret + b"\xff\xff").decode()
    same = "".join(a if a == b else "\x01" for a, b in zip(one, two, strict=True))
    return max(same.split("\x01"), key=len)


def cores(secret: str) -> set[str]:
    """Every piece of text that would give the secret away, whatever surrounded it."""
    found = {ENCODINGS[name](secret) for name in ENCODINGS if "base64" not in name}
    found = {core for core in found if core}
    data = secret.encode()
    for offset in range(3):
        for urlsafe in (False, True):
            found.add(_fixed_base64(data, offset, urlsafe))
    return found


def _views(text: str) -> list[str]:
    unescaped = html.unescape(text)
    return [
        text,
        unescaped,
        text.replace("\\/", "/"),
        re.sub(r"[\r\n]", "", text),
        re.sub(r"[\r\n]", "", unescaped.replace("\\n", "").replace("\\/", "/")),
    ]


def leaks(text: str, secret: str) -> list[str]:
    """Return the spellings of secret found in text (empty when it gives nothing away)."""
    found = []
    views = _views(text)
    for core in cores(secret):
        if any(core in view for view in views):
            found.append(core)
    return found


def as_text(value: object) -> str:
    """Return a stored value as text to scan: JSON with non-ASCII kept."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
