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


class JSONTextError(ValueError):
    def __init__(self, msg: str, line: int = 1, column: int = 1):
        super().__init__(f"{msg} at line {line}, column {column}")
        self.msg, self.line, self.column = msg, line, column


def parse_json(text: str | bytes) -> Any:
    """Return the parsed value, or raise JSONTextError saying what is wrong and where."""
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
        )
    except json.JSONDecodeError as exc:
        raise JSONTextError(exc.msg, exc.lineno, exc.colno) from None
    except _BadNumber as exc:
        raise JSONTextError(exc.msg, *_position(text, exc.literal)) from None
    except UnicodeDecodeError:
        raise JSONTextError("not UTF-8 text") from None
    except RecursionError:
        # json's C decoder recurses per nesting level; thousands of "[" exhaust the stack.
        raise JSONTextError(TOO_DEEP) from None
    if _has_unstorable_text(value):
        raise JSONTextError(NOT_TEXT)
    return value


def _refuse_constant(constant: str):
    # Python accepts NaN and Infinity; JSON (and PostgreSQL's jsonb) does not.
    raise JSONTextError(NOT_A_NUMBER.format(constant=constant))


class _BadNumber(Exception):
    def __init__(self, msg: str, literal: str):
        self.msg, self.literal = msg, literal


def _finite_float(literal: str) -> float:
    # 1e999 parses as infinity, which neither JSON nor the database can hold.
    value = float(literal)
    if not math.isfinite(value):
        number = literal if len(literal) <= 20 else literal[:17] + "..."
        raise _BadNumber(OUT_OF_RANGE.format(number=number), literal)
    return value


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadNumber(TOO_MANY_DIGITS.format(limit=MAX_INT_DIGITS), literal)
    return int(literal)


def _position(text: str | bytes, literal: str) -> tuple[int, int]:
    """Line and column of the number as a token (json's callbacks are not told where)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    match = re.search(rf"(?<![\w.+\-\"]){re.escape(literal)}(?![\w.+\-])", text)
    if match is None:
        return 1, 1
    before = text[: match.start()]
    return before.count("\n") + 1, match.start() - before.rfind("\n")


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
