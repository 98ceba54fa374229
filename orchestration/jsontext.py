"""Parse JSON typed or posted by people, with a position for every kind of failure."""

from __future__ import annotations

import json
from typing import Any

TOO_DEEP = "nested too deeply"


class JSONTextError(ValueError):
    def __init__(self, msg: str, line: int = 1, column: int = 1):
        super().__init__(f"{msg} at line {line}, column {column}")
        self.msg, self.line, self.column = msg, line, column


def parse_json(text: str | bytes) -> Any:
    """Return the parsed value, or raise JSONTextError saying what is wrong and where."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONTextError(exc.msg, exc.lineno, exc.colno) from None
    except UnicodeDecodeError:
        raise JSONTextError("not UTF-8 text") from None
    except RecursionError:
        # json's C decoder recurses per nesting level; thousands of "[" exhaust the stack.
        raise JSONTextError(TOO_DEEP) from None
