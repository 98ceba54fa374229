"""Parse JSON typed or posted by people, with a position for every kind of failure."""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate
from typing import Any

# One depth policy for every JSON text people or APIs send (webhook payloads, run input,
# samples, request bodies, upstream answers), checked before parsing: json's C decoder,
# and every tree walk after it, recurse per level, and the Python recursion limit they would
# run into changes at run time (cel-python raises it on its first compile), so a limit left
# to it refused a payload in a fresh process and took it later (issue 13, D5).
MAX_DEPTH = 64
TOO_DEEP = "JSON nested deeper than the limit of {limit} levels"
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
    _check_depth(text)
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
        # Not reached past _check_depth unless the recursion limit is set absurdly low.
        raise JSONTextError(TOO_DEEP.format(limit=MAX_DEPTH)) from None
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


# Opening brackets count +1 and closing ones -1 (255 as a signed byte); all else goes.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def _check_depth(text: str) -> None:
    """Refuse `text` when its brackets, outside strings, nest deeper than MAX_DEPTH."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # the common case, at the cost of two counts
    # Every step below runs in C (a Python loop or a regex took half the time json did):
    # drop escape pairs, so that every remaining quote opens or closes a string, keep what
    # lies between strings, keep only its brackets, and take the deepest running sum.
    unescaped = text.replace("\\\\", "").replace('\\"', "") if "\\" in text else text
    outside = "".join(unescaped.split('"')[::2])
    brackets = outside.encode("utf-8", "surrogatepass").translate(_STEPS, _NOT_BRACKETS)
    if brackets and max(accumulate(array("b", brackets))) > MAX_DEPTH:
        raise JSONTextError(TOO_DEEP.format(limit=MAX_DEPTH), *_too_deep_position(text))


def _too_deep_position(text: str) -> tuple[int, int]:
    """Line and column of the bracket that opens level MAX_DEPTH + 1."""
    depth = 0
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                before = text[:index]
                return before.count("\n") + 1, index - before.rfind("\n")
        elif char in "]}":
            depth -= 1
    return 1, 1


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
