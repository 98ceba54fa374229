"""Evaluate an expression against a run, as a value or as a string for a request."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from cloudfunctions.cel import messages as msg
from cloudfunctions.cel.compiled import CompiledExpression
from cloudfunctions.cel.compiler import compile_expression
from cloudfunctions.cel.convert import cel_type_name
from cloudfunctions.cel.errors import (
    EVALUATION,
    NOT_CONSTANT,
    TYPE,
    UNKNOWN_NAME,
    CelError,
    CelProblem,
)
from cloudfunctions.cel.interpret import run
from cloudfunctions.cel.limits import DEFAULT_TIMEOUT


def evaluate(
    expression: str | CompiledExpression,
    *,
    trigger: Mapping[str, Any] | None,
    events: Mapping[str, Mapping[str, Any]] | None,
    field: str = "",
    timeout: float = DEFAULT_TIMEOUT,
    response: Any = None,
) -> Any:
    """Evaluate an expression against a run and return a plain Python value; `response`
    (a step's captured answer) is known to a Result only."""
    try:
        compiled = (
            expression
            if isinstance(expression, CompiledExpression)
            else compile_expression(expression)
        )
    except CelError as error:
        raise CelError.from_problem(error.as_problem(), field) from None
    if compiled.constant_problem is not None:
        raise CelError.from_problem(compiled.constant_problem, field)
    if compiled.response_position is not None and response is None:
        line, column = compiled.response_position
        problem = CelProblem(UNKNOWN_NAME, msg.RESPONSE_ONLY_IN_RESULT, line, column)
        raise CelError.from_problem(problem, field)
    if compiled.constant is not NOT_CONSTANT:
        value = compiled.constant
        return value if isinstance(value, str | int | float | None) else copy.deepcopy(value)
    try:
        return run(compiled, trigger or {}, events or {}, timeout, response=response)
    except CelError as error:
        raise CelError.from_problem(error.as_problem(), field) from None


def evaluate_string(
    expression: str | CompiledExpression,
    *,
    trigger: Mapping[str, Any] | None,
    events: Mapping[str, Mapping[str, Any]] | None,
    field: str = "",
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Evaluate to a string fit for a URI, parameter or header: no CR or LF."""
    value = evaluate(expression, trigger=trigger, events=events, field=field, timeout=timeout)
    label = field or "The expression"
    if not isinstance(value, str):
        raise CelError(
            msg.MUST_BE_STRING.format(field=label, type=cel_type_name(value)),
            kind=TYPE,
            field=field,
        )
    if "\r" in value or "\n" in value:
        raise CelError(msg.NO_LINE_BREAKS.format(field=label), kind=EVALUATION, field=field)
    return value
