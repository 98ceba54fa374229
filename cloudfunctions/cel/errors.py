"""Problems and errors an expression can have, and the kinds callers tell apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SYNTAX = "syntax"
UNKNOWN_NAME = "unknown_name"
UNKNOWN_EVENT = "unknown_event"
EVALUATION = "evaluation"
TYPE = "type"
LIMIT = "limit"
TIMEOUT = "timeout"


class NotConstant:
    """Mark an expression whose value depends on the run."""

    def __repr__(self) -> str:
        return "NOT_CONSTANT"

    def __reduce__(self) -> str:
        return "NOT_CONSTANT"


NOT_CONSTANT = NotConstant()


@dataclass(frozen=True)
class CelProblem:
    """One thing wrong with an expression, positioned 1-based when the position is known."""

    kind: str
    message: str
    line: int | None = None
    column: int | None = None


class CelError(Exception):
    """An expression was refused or failed; `message` never contains run data."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        line: int | None = None,
        column: int | None = None,
        field: str = "",
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.line = line
        self.column = column
        self.field = field
        self.detail = message if detail is None else detail

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_error,
            (self.message, self.kind, self.line, self.column, self.field, self.detail),
        )

    @classmethod
    def from_problem(cls, problem: CelProblem, field: str = "") -> CelError:
        """Build the error a caller sees for `problem` in `field`."""
        return cls(
            _prefixed(field, problem.message),
            kind=problem.kind,
            line=problem.line,
            column=problem.column,
            field=field,
            detail=problem.message,
        )

    def as_problem(self) -> CelProblem:
        """Return the problem without the field prefix."""
        return CelProblem(self.kind, self.detail, self.line, self.column)


def _rebuild_error(*args: Any) -> CelError:
    message, kind, line, column, field, detail = args
    return CelError(message, kind=kind, line=line, column=column, field=field, detail=detail)


def _prefixed(field: str, detail: str) -> str:
    return f"{field}: {detail}" if field else detail
