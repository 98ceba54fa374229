"""Parse JSON typed or posted by people, with a position for every kind of failure."""

from __future__ import annotations

import json
import re
from typing import Any

TOO_DEEP = "nested too deeply"
NOT_A_NUMBER = "{constant} is not a JSON number"
NOT_TEXT = "a string holds \\u0000 or a lone surrogate, which cannot be stored"
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class JSONTextError(ValueError):
    def __init__(self, msg: str, line: int = 1, column: int = 1):
        super().__init__(f"{msg} at line {line}, column {column}")
        self.msg, self.line, self.column = msg, line, column


def parse_json(text: str | bytes) -> Any:
    """Return the parsed value, or raise JSONTextError saying what is wrong and where."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise JSONTextError(exc.msg, exc.lineno, exc.colno) from None
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
