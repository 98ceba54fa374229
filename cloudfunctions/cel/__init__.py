"""Compile, check and evaluate the CEL expressions of cloud-function steps, within limits."""

from __future__ import annotations

import logging

from cloudfunctions.cel import messages
from cloudfunctions.cel.compiled import CompiledExpression
from cloudfunctions.cel.compiler import (
    check_expression,
    clear_cache,
    compile_count,
    compile_expression,
    constant_value,
)
from cloudfunctions.cel.errors import NOT_CONSTANT, UNKNOWN_EVENT, CelError, CelProblem
from cloudfunctions.cel.evaluation import evaluate, evaluate_string
from cloudfunctions.cel.limits import DEFAULT_TIMEOUT, MAX_SOURCE_LENGTH
from cloudfunctions.cel.syntax import caret

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_SOURCE_LENGTH",
    "NOT_CONSTANT",
    "UNKNOWN_EVENT",
    "CelError",
    "CelProblem",
    "CompiledExpression",
    "caret",
    "check_expression",
    "clear_cache",
    "compile_count",
    "compile_expression",
    "constant_value",
    "evaluate",
    "evaluate_string",
    "messages",
]

# celpy logs whole activations (trigger and event payloads, hence secrets) at DEBUG, and
# function arguments at ERROR; keep them out of the logs unless settings chose a level.
if logging.getLogger("celpy").level == logging.NOTSET:
    logging.getLogger("celpy").setLevel(logging.CRITICAL)
