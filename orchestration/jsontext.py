"""Parse JSON typed or posted by people, with a position for every kind of failure."""

from __future__ import annotations

import json
import math
import re
from typing import Any

TOO_DEEP = "nested too deeply"
NOT_A_NUMBER = "{constant} is not a JSON number"
OUT_OF_RANGE = "the number {number} is too large to store"
TOO_MANY_DIGITS = "a number has more than {limit} digits"
# Python refuses to convert longer integers (sys.get_int_max_str_digits); so do we, clearly.
MAX_INT_DIGITS = 4300
NOT_TEXT = "a string holds \\u0000 or a lone surrogate, which cannot be stored"
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
# Only these escapes parse into NUL or a surrogate (raw NUL is not valid JSON text).
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
# A string (skipped) or a number: to find, outside strings, the number json refused.
_STRING_OR_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')


class JSONTextError(ValueError):
    def __init__(self, msg: str, line: int = 1, column: int = 1):
        super().__init__(f"{msg} at line {line}, column {column}")
        self.msg, self.line, self.column = msg, line, column


class NotAnObjectError(ValueError):
    """Valid JSON, but not the object ({…}) the caller asked for."""


class _Infinite(Exception):
    def __init__(self, literal: str):
        self.literal = literal


def parse_json(text: str | bytes) -> Any:
    """Return the parsed value, or raise JSONTextError saying what is wrong and where."""
    if isinstance(text, bytes):
        # As json.loads would (UTF-8, -16 or -32, surrogates let through), but once, so that
        # what follows checks the very text that was parsed.
        try:
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        except UnicodeDecodeError:
            raise JSONTextError("not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise JSONTextError(exc.msg, exc.lineno, exc.colno) from None
    except JSONTextError:
        raise  # NaN or Infinity, from _refuse_constant
    except _Infinite as exc:
        infinite = exc.literal
        number = infinite if len(infinite) <= 20 else infinite[:17] + "..."
        where = _number_position(text, lambda literal: literal == infinite)
        raise JSONTextError(OUT_OF_RANGE.format(number=number), *where) from None
    except RecursionError:
        # json's C decoder recurses per nesting level; thousands of "[" exhaust the stack.
        raise JSONTextError(TOO_DEEP) from None
    except ValueError:
        # An integer past Python's digit limit: json lets int() raise a bare ValueError.
        message = TOO_MANY_DIGITS.format(limit=MAX_INT_DIGITS)
        raise JSONTextError(message, *_number_position(text, _too_long)) from None
    # Walking every string of a large answer costs more than parsing it: only when it may help.
    if _may_hold_unstorable_text(text) and _has_unstorable_text(value):
        raise JSONTextError(NOT_TEXT)
    return value


def parse_json_object(text: str | bytes) -> dict:
    """Return the parsed JSON object; raise JSONTextError or NotAnObjectError."""
    value = parse_json(text)
    if not isinstance(value, dict):
        raise NotAnObjectError(type(value).__name__)
    return value


def _refuse_constant(constant: str):
    # Python accepts NaN and Infinity; JSON (and PostgreSQL's jsonb) does not.
    raise JSONTextError(NOT_A_NUMBER.format(constant=constant))


def _finite_float(literal: str) -> float:
    # 1e999 parses as infinity, which neither JSON nor the database can hold.
    value = float(literal)
    if not math.isfinite(value):
        raise _Infinite(literal)
    return value


def _may_hold_unstorable_text(text: str) -> bool:
    if _RISKY_ESCAPE.search(text):
        return True
    return not text.isascii() and _UNSTORABLE.search(text) is not None


def _has_unstorable_text(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _too_long(literal: str) -> bool:
    digits = literal.lstrip("-")
    return digits.isdigit() and len(digits) > MAX_INT_DIGITS


def _number_position(text: str, wanted) -> tuple[int, int]:
    """Line and column of the first number, outside strings, that `wanted` picks (json's
    number hooks are not told where they are)."""
    for match in _STRING_OR_NUMBER.finditer(text):
        literal = match.group(1)
        if literal is not None and wanted(literal):
            before = text[: match.start()]
            return before.count("\n") + 1, match.start() - before.rfind("\n")
    return 1, 1
