"""Compile expressions once, cache them by text within a weight, and fold constants."""

from __future__ import annotations

import copy
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

import celpy
import lark

from cloudfunctions.cel import messages as msg
from cloudfunctions.cel.check import Walker
from cloudfunctions.cel.compiled import CompiledExpression
from cloudfunctions.cel.errors import (
    LIMIT,
    NOT_CONSTANT,
    SYNTAX,
    UNKNOWN_EVENT,
    UNKNOWN_NAME,
    CelError,
    CelProblem,
)
from cloudfunctions.cel.interpret import run
from cloudfunctions.cel.limits import (
    CACHE_BYTES,
    CACHE_SIZE,
    DEFAULT_TIMEOUT,
    MAX_TREE_DEPTH,
    TREE_NODE_BYTES,
    weight,
)
from cloudfunctions.cel.syntax import check_size, string_literal_problem, syntax_problem, tree_depth


@dataclass(frozen=True)
class Analysis:
    """The cached outcome of compiling one source text."""

    compiled: CompiledExpression | None
    problems: tuple[CelProblem, ...]
    # What it keeps alive (its parse tree, or its folded value): its weight in the cache.
    weight: int = TREE_NODE_BYTES


# ---------------------------------------------------------------- compiling and the cache

_local = threading.local()
_cache: OrderedDict[str, Analysis] = OrderedDict()
_cache_bytes = 0
_pending: dict[str, _Pending] = {}
_cache_lock = threading.Lock()
_compile_count = 0


def _parser_environment() -> celpy.Environment:
    # celpy's parser keeps the text being parsed on the Environment, so each thread has its own.
    environment = getattr(_local, "environment", None)
    if environment is None:
        previous_limit = sys.getrecursionlimit()
        environment = celpy.Environment()
        # celpy sets the limit to 2500 for its recursive interpreter; never lower a larger one.
        sys.setrecursionlimit(max(previous_limit, sys.getrecursionlimit()))
        _local.environment = environment
    return environment


def compile_count() -> int:
    """Return how many source texts have been compiled since start (or `clear_cache`)."""
    return _compile_count


def clear_cache() -> None:
    """Forget every compiled expression and reset the compile counter."""
    global _compile_count, _cache_bytes
    with _cache_lock:
        _cache.clear()
        _compile_count = _cache_bytes = 0


class _Pending:
    """A compile in progress, which other threads asking for the same text wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.analysis: Analysis | None = None


def _analyse(source: str) -> Analysis:
    global _compile_count, _cache_bytes
    with _cache_lock:
        analysis = _cache.get(source)
        if analysis is not None:
            _cache.move_to_end(source)
            return analysis
        pending = _pending.get(source)
        owner = pending is None
        if pending is None:
            pending = _pending[source] = _Pending()
    if not owner:
        pending.done.wait()
        # None means the compiling thread died of something unexpected; try again here.
        return pending.analysis or _analyse(source)
    # Compiling outside the lock: folding a constant may take up to the time limit, and other
    # texts must not wait for that.
    try:
        analysis = _compile_uncached(source)
        pending.analysis = analysis
    finally:
        with _cache_lock:
            del _pending[source]
            if pending.analysis is not None:
                _compile_count += 1
                _cache[source] = pending.analysis
                _cache_bytes += pending.analysis.weight
                while len(_cache) > CACHE_SIZE or _cache_bytes > CACHE_BYTES:
                    _, evicted = _cache.popitem(last=False)
                    _cache_bytes -= evicted.weight
        pending.done.set()
    return analysis


def compile_expression(source: str) -> CompiledExpression:
    """Compile `source` once (cached by text); raise CelError for what makes it unusable."""
    analysis = _analyse(source)
    if analysis.compiled is None or analysis.problems:
        raise CelError.from_problem(analysis.problems[0])
    return analysis.compiled


def check_expression(
    source: str, *, known_events: Collection[str] | None = None, response: bool = False
) -> list[CelProblem]:
    """List the problems in `source`, in source order; unknown events only if `known_events`;
    `response` is a name only where it says so (a step's Result)."""
    analysis = _analyse(source)
    problems = list(analysis.problems)
    compiled = analysis.compiled
    if compiled is not None:
        if compiled.response_position is not None and not response:
            line, column = compiled.response_position
            problems.append(CelProblem(UNKNOWN_NAME, msg.RESPONSE_ONLY_IN_RESULT, line, column))
        if known_events is not None:
            known = set(known_events)
            problems.extend(
                CelProblem(
                    UNKNOWN_EVENT, msg.UNKNOWN_EVENT.format(name=ref.name), ref.line, ref.column
                )
                for ref in compiled.event_refs
                if ref.name not in known
            )
        if compiled.constant_problem is not None:
            problems.append(compiled.constant_problem)
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return problems


def constant_value(source: str) -> Any:
    """Return the folded value of a constant expression, else NOT_CONSTANT (also on errors)."""
    analysis = _analyse(source)
    if analysis.compiled is None or analysis.problems or analysis.compiled.constant_problem:
        return NOT_CONSTANT
    value = analysis.compiled.constant
    return value if value is NOT_CONSTANT else copy.deepcopy(value)


def _compile_uncached(source: str) -> Analysis:
    problem = check_size(source)
    if problem is not None:
        return Analysis(None, (problem,))
    # The clock starts once the parser exists: building it (once per thread) takes ~0.5 s.
    environment = _parser_environment()
    started = time.monotonic()
    try:
        ast = environment.compile(source)
    except celpy.CELParseError as error:
        return Analysis(None, (syntax_problem(source, error),))
    except lark.exceptions.LarkError:
        return Analysis(None, (CelProblem(SYNTAX, msg.NOT_PARSABLE),))
    except RecursionError:
        return Analysis(None, (CelProblem(LIMIT, msg.TOO_COMPLEX),))
    if tree_depth(ast) > MAX_TREE_DEPTH:
        return Analysis(None, (CelProblem(LIMIT, msg.TOO_COMPLEX),))
    walker = Walker()
    try:
        problem = string_literal_problem(ast)
        if problem is not None:
            return Analysis(None, (problem,))
        walker.walk(ast, frozenset())
    except RecursionError:
        return Analysis(None, (CelProblem(LIMIT, msg.TOO_COMPLEX),))
    compiled = CompiledExpression(
        source=source,
        ast=ast,
        event_refs=tuple(walker.event_refs),
        uses_trigger=walker.uses_trigger,
        uses_events=walker.uses_events,
        needs_all_events=walker.needs_all_events,
        uses_context_path=walker.uses_context_path,
        response_position=walker.response_position,
        string_literals=frozenset(walker.literal_positions),
        literal_positions=dict(walker.literal_positions),
    )
    problems = tuple(walker.problems)
    run_dependent = (
        compiled.uses_trigger
        or compiled.uses_events
        or compiled.uses_context_path
        or compiled.response_position is not None
    )
    if not problems and not run_dependent:
        # Folded, the value (or its error) is all that evaluating needs: the tree goes, and
        # the value weighs what it takes (one folded list once weighed one node, whatever
        # its size).
        folded = fold(compiled, started)
        return Analysis(folded, problems, weight=TREE_NODE_BYTES + weight(folded.constant))
    nodes = sum(1 for _ in ast.iter_subtrees())
    return Analysis(compiled, problems, weight=nodes * TREE_NODE_BYTES)


def fold(compiled: CompiledExpression, started: float) -> CompiledExpression:
    # Parsing a long text takes a good part of the time limit: together they keep to it.
    try:
        value = run(compiled, {}, {}, DEFAULT_TIMEOUT, started)
    except CelError as error:
        return replace(compiled, ast=None, constant_problem=error.as_problem())
    return replace(compiled, ast=None, constant=value)
