"""Run a compiled expression with celpy and explain its failures without run data."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import lark
import re2
from celpy import celtypes
from celpy.evaluation import Activation, CELEvalError

from cloudfunctions.cel import messages as msg
from cloudfunctions.cel.compiled import CompiledExpression
from cloudfunctions.cel.convert import from_cel, to_cel
from cloudfunctions.cel.errors import (
    EVALUATION,
    LIMIT,
    TIMEOUT,
    TYPE,
    UNKNOWN_EVENT,
    UNKNOWN_NAME,
    CelError,
    CelProblem,
)
from cloudfunctions.cel.limits import BoundedEvaluator, Budget, OverLimit, Timeout
from cloudfunctions.cel.syntax import (
    CONTEXT_EVENT_PATH,
    EVENTS,
    RESPONSE,
    TRIGGER,
    bare_ident,
    column_of,
    line_of,
    quote_text,
    string_literal,
)
from orchestration.validators import is_ascii_digits

_OPERATORS = {
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "unary_not": "!",
    "unary_neg": "-",
}


class _SafeProblem(Exception):
    """Mark a CELEvalError made here; its args carry a message that is safe to show."""


# re2 runs in linear time, but by default it logs the failing pattern (maybe run data) to stderr.
_REGEX_OPTIONS = re2.Options()
_REGEX_OPTIONS.log_errors = False


def matches(text: Any, pattern: Any) -> Any:
    if not isinstance(text, str) or not isinstance(pattern, str):
        return _safe_error(msg.BAD_ARGUMENTS.format(name="matches"))
    try:
        found = re2.search(pattern, text, _REGEX_OPTIONS)
    except re2.error:
        return _safe_error(msg.BAD_REGEX)
    return celtypes.BoolType(found is not None)


def _safe_error(detail: str, line: int | None = None, column: int | None = None) -> CELEvalError:
    return CELEvalError(detail, _SafeProblem, (detail, line, column))


def run(
    compiled: CompiledExpression,
    trigger: Mapping[str, Any],
    events: Mapping[str, Mapping[str, Any]],
    timeout: float,
    started: float | None = None,
    response: Any = None,
) -> Any:
    """Evaluate `compiled` within `timeout` seconds of `started` (default: now)."""
    deadline = (time.monotonic() if started is None else started) + timeout
    variables: dict[str, Any] = {}
    if compiled.uses_trigger:
        variables[TRIGGER] = to_cel(trigger, TRIGGER)
    if compiled.uses_events:
        if compiled.needs_all_events:
            wanted: Collection[str] = events.keys()
        else:
            wanted = {ref.name for ref in compiled.event_refs}
        variables[EVENTS] = celtypes.MapType(
            {
                celtypes.StringType(name): to_cel(events[name], f'events["{name}"]')
                for name in wanted
                if name in events
            }
        )
    if compiled.response_position is not None:
        variables[RESPONSE] = to_cel(response, RESPONSE)
    functions = {"matches": matches}
    if compiled.uses_context_path:
        functions[CONTEXT_EVENT_PATH] = _context_event_path(events, compiled)
    activation = Activation(vars=variables, functions=functions)
    failure: CelProblem | None = None
    try:
        value = BoundedEvaluator(compiled.ast, activation, Budget(deadline)).evaluate()
    except CELEvalError as error:
        failure = _explain(error, compiled)
    except Timeout:
        failure = CelProblem(TIMEOUT, msg.TIMEOUT.format(seconds=timeout))
    except OverLimit as error:
        failure = CelProblem(LIMIT, error.message)
    except RecursionError:
        failure = CelProblem(LIMIT, msg.TOO_COMPLEX)
    except Exception:
        # Other exceptions may quote run data in their text, so only their existence is told.
        failure = CelProblem(EVALUATION, msg.NOT_EVALUABLE)
    if failure is not None:
        # Raised outside the except blocks so the celpy error (which quotes the whole
        # activation) is not chained to it as __context__.
        raise CelError.from_problem(failure)
    return from_cel(value)


def _context_event_path(events: Mapping[str, Mapping[str, Any]], compiled: CompiledExpression):
    def contextEventPath(path: Any) -> Any:  # noqa: N802 - the CEL name
        if not isinstance(path, str):
            return _path_error(msg.CONTEXT_PATH_NOT_STRING, "", compiled)
        # Only designer-typed paths may appear in messages; computed ones may hold run data.
        designed = path in compiled.string_literals
        event, colon, rest = str(path).partition(":")
        if not colon or not event:
            return _path_error(msg.CONTEXT_PATH_FORMAT, path, compiled)
        if event not in events:
            detail = (
                msg.UNKNOWN_EVENT.format(name=event)
                if designed
                else msg.CONTEXT_PATH_UNKNOWN_EVENT_DYNAMIC
            )
            return _path_error(detail, path, compiled)
        value: Any = events[event]
        for segment in rest.split(".") if rest else ():
            if isinstance(value, Mapping) and segment in value:
                value = value[segment]
            elif (
                isinstance(value, list | tuple)
                and is_ascii_digits(segment)
                and int(segment) < len(value)
            ):
                value = value[int(segment)]
            else:
                detail = (
                    msg.CONTEXT_PATH_NOT_FOUND.format(path=rest, event=event)
                    if designed
                    else msg.CONTEXT_PATH_NOT_FOUND_DYNAMIC
                )
                return _path_error(detail, path, compiled)
        try:
            return to_cel(value, f'events["{event}"]')
        except CelError as error:
            return _path_error(error.message, path, compiled)

    return contextEventPath


def _path_error(detail: str, path: str, compiled: CompiledExpression) -> CELEvalError:
    return _safe_error(detail, *compiled.literal_positions.get(path, (None, None)))


def _explain(error: CELEvalError, compiled: CompiledExpression) -> CelProblem:
    """Describe a celpy evaluation error from its kind and the source text, never its args."""
    args = error.args
    cause = args[1] if len(args) > 1 else None
    if cause is _SafeProblem:
        detail, line, column = args[2]
        return CelProblem(EVALUATION, detail, line, column)
    tree, token = error.tree, error.token
    source = compiled.source
    if isinstance(tree, lark.Tree):
        data = tree.data
        if data == "member_dot":
            member, key = tree.children[0], tree.children[1]
            container = _excerpt(source, member)
            quoted = quote_text(str(key))
            if cause is KeyError and bare_ident(member) == EVENTS:
                return _at(UNKNOWN_EVENT, msg.UNKNOWN_EVENT.format(name=key), key)
            if cause is KeyError:
                return _at(EVALUATION, msg.NO_KEY.format(key=quoted, container=container), key)
            return _at(TYPE, msg.NO_FIELDS.format(key=quoted, container=container), key)
        if data == "member_index":
            member, index = tree.children[0], tree.children[1]
            container = _excerpt(source, member)
            key = _excerpt(source, index)
            if cause is KeyError and bare_ident(member) == EVENTS:
                literal = string_literal(index)
                if literal is not None:
                    return _at(UNKNOWN_EVENT, msg.UNKNOWN_EVENT.format(name=literal[0]), index)
                return _at(EVALUATION, msg.UNKNOWN_EVENT_DYNAMIC.format(key=key), index)
            if cause is KeyError:
                return _at(EVALUATION, msg.NO_KEY.format(key=key, container=container), index)
            if cause is IndexError:
                detail = msg.INDEX_OUT_OF_RANGE.format(key=key, container=container)
                return _at(EVALUATION, detail, index)
            return _at(TYPE, msg.BAD_INDEX.format(key=key, container=container), index)
        if data == "primary":
            name = bare_ident(tree)
            if name is not None:
                return _at(UNKNOWN_NAME, msg.UNKNOWN_NAME.format(name=name), name)
        operator = _operator(tree)
        if operator is not None:
            if cause is ZeroDivisionError:
                return _at(EVALUATION, msg.DIVISION_BY_ZERO, tree.children[-1])
            if cause is TypeError:
                return _at(TYPE, msg.BAD_OPERANDS.format(operator=operator), tree)
            if cause in (ValueError, OverflowError):
                return _at(EVALUATION, msg.OVERFLOW, tree)
        return _at(EVALUATION, msg.NOT_EVALUABLE, tree)
    if isinstance(token, lark.Token):
        name = str(token)
        if cause is KeyError:
            return _at(UNKNOWN_NAME, msg.UNKNOWN_FUNCTION.format(name=name), token)
        if cause is ValueError:
            return _at(EVALUATION, msg.BAD_CONVERSION.format(name=name), token)
        return _at(TYPE, msg.BAD_ARGUMENTS.format(name=name), token)
    if cause is ZeroDivisionError:
        return CelProblem(EVALUATION, msg.DIVISION_BY_ZERO)
    if cause in (ValueError, OverflowError):
        return CelProblem(EVALUATION, msg.OVERFLOW)
    return CelProblem(EVALUATION, msg.NOT_EVALUABLE)


def _at(kind: str, detail: str, where: Any) -> CelProblem:
    return CelProblem(kind, detail, line_of(where), column_of(where))


def _operator(tree: lark.Tree) -> str | None:
    for child in tree.children:
        if isinstance(child, lark.Tree) and child.data in _OPERATORS:
            return _OPERATORS[child.data]
    return None


def _excerpt(source: str, tree: Any) -> str:
    meta = getattr(tree, "meta", None)
    if meta is None or getattr(meta, "empty", True):
        return "the value"
    text = " ".join(source[meta.start_pos : meta.end_pos].split())
    return text if len(text) <= 80 else text[:79] + "…"
