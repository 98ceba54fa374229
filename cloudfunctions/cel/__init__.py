"""Compile, check and evaluate the CEL expressions of cloud-function steps, within limits."""

from __future__ import annotations

import copy
import datetime
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import celpy
import lark
import re2
from celpy import celtypes
from celpy.evaluation import Activation, CELEvalError, Evaluator, base_functions, celstr

from cloudfunctions.cel import messages as msg
from orchestration.validators import is_ascii_digits

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_NESTING_DEPTH",
    "MAX_SOURCE_LENGTH",
    "MAX_TREE_DEPTH",
    "NOT_CONSTANT",
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
]

MAX_SOURCE_LENGTH = 4096
MAX_NESTING_DEPTH = 32
# The interpreter recurses about 4.5 Python frames per tree level; 32 nested brackets make
# about 330 levels, and 400 levels stay well inside the 2500-frame limit celpy asks for.
MAX_TREE_DEPTH = 400
DEFAULT_TIMEOUT = 0.5
CACHE_SIZE = 1024
# A parsed tree takes 750-950 bytes per node, and a source character makes from under one
# node ("trigger.id") to four (a list of numbers): counting nodes bounds the cache near 60 MB.
CACHE_NODES = 70_000
_SURROGATE = re.compile("[\ud800-\udfff]")

SYNTAX = "syntax"
UNKNOWN_NAME = "unknown_name"
UNKNOWN_EVENT = "unknown_event"
EVALUATION = "evaluation"
TYPE = "type"
LIMIT = "limit"
TIMEOUT = "timeout"

TRIGGER = "trigger"
EVENTS = "events"
CONTEXT_EVENT_PATH = "contextEventPath"

# Macros that bind a variable: x.map(v, expr). celpy's non-standard reduce() is left out on
# purpose: doubling an accumulator in it exhausts memory before any time limit can act.
_BINDING_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})
_FUNCTIONS = frozenset(name for name in base_functions if not name.startswith("_")) - {"reduce"}
_GLOBAL_FUNCTIONS = _FUNCTIONS | {"has", "dyn", CONTEXT_EVENT_PATH}
_METHODS = _FUNCTIONS | _BINDING_MACROS | {"min"}
# Type names are values in CEL (`type(x) == int`) and celpy resolves them as functions.
_TYPE_NAMES = frozenset(
    {"bool", "bytes", "double", "duration", "int", "list", "map", "null_type", "string"}
    | {"timestamp", "type", "uint"}
)
_PASS_THROUGH = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication"}
    | {"unary", "member", "primary", "paren_expr"}
)
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

# celpy logs whole activations (trigger and event payloads, hence secrets) at DEBUG, and
# function arguments at ERROR; keep them out of the logs unless settings chose a level.
if logging.getLogger("celpy").level == logging.NOTSET:
    logging.getLogger("celpy").setLevel(logging.CRITICAL)


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


@dataclass(frozen=True)
class _EventRef:
    name: str
    line: int | None
    column: int | None


@dataclass(frozen=True, eq=False)
class CompiledExpression:
    """A parsed, analysed expression; immutable, so threads may share it."""

    source: str
    ast: lark.Tree | None = field(repr=False)  # None once folded to a constant
    event_refs: tuple[_EventRef, ...] = field(repr=False)
    uses_trigger: bool = False
    uses_events: bool = False
    needs_all_events: bool = False
    uses_context_path: bool = False
    string_literals: frozenset[str] = field(default=frozenset(), repr=False)
    literal_positions: Mapping[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    constant: Any = NOT_CONSTANT
    constant_problem: CelProblem | None = None
    # A plain-Python evaluator for the common shapes (paths, literals, "+"); None if unsupported.
    fast: Callable[[Any, Any], Any] | None = field(default=None, repr=False)

    @property
    def is_constant(self) -> bool:
        """Tell whether the value was folded at compile time (or failed doing so)."""
        return self.constant is not NOT_CONSTANT or self.constant_problem is not None


@dataclass(frozen=True)
class _Analysis:
    """The cached outcome of compiling one source text."""

    compiled: CompiledExpression | None
    problems: tuple[CelProblem, ...]
    nodes: int = 1  # of the parse tree it keeps: its weight in the cache


# ---------------------------------------------------------------- compiling and the cache

_local = threading.local()
_cache: OrderedDict[str, _Analysis] = OrderedDict()
_cache_nodes = 0
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
    global _compile_count, _cache_nodes
    with _cache_lock:
        _cache.clear()
        _compile_count = _cache_nodes = 0


class _Pending:
    """A compile in progress, which other threads asking for the same text wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.analysis: _Analysis | None = None


def _analyse(source: str) -> _Analysis:
    global _compile_count, _cache_nodes
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
                _cache_nodes += pending.analysis.nodes
                while len(_cache) > CACHE_SIZE or _cache_nodes > CACHE_NODES:
                    _, evicted = _cache.popitem(last=False)
                    _cache_nodes -= evicted.nodes
        pending.done.set()
    return analysis


def compile_expression(source: str) -> CompiledExpression:
    """Compile `source` once (cached by text); raise CelError for what makes it unusable."""
    analysis = _analyse(source)
    if analysis.compiled is None or analysis.problems:
        raise CelError.from_problem(analysis.problems[0])
    return analysis.compiled


def check_expression(
    source: str, *, known_events: Collection[str] | None = None
) -> list[CelProblem]:
    """List the problems in `source`, in source order; unknown events only if `known_events`."""
    analysis = _analyse(source)
    problems = list(analysis.problems)
    compiled = analysis.compiled
    if compiled is not None:
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


def _compile_uncached(source: str) -> _Analysis:
    problem = _check_size(source)
    if problem is not None:
        return _Analysis(None, (problem,))
    try:
        ast = _parser_environment().compile(source)
    except celpy.CELParseError as error:
        return _Analysis(None, (_syntax_problem(source, error),))
    except lark.exceptions.LarkError:
        return _Analysis(None, (CelProblem(SYNTAX, msg.NOT_PARSABLE),))
    except RecursionError:
        return _Analysis(None, (CelProblem(LIMIT, msg.TOO_COMPLEX),))
    if _tree_depth(ast) > MAX_TREE_DEPTH:
        return _Analysis(None, (CelProblem(LIMIT, msg.TOO_COMPLEX),))
    walker = _Walker()
    try:
        problem = _string_literal_problem(ast)
        if problem is not None:
            return _Analysis(None, (problem,))
        walker.walk(ast, frozenset())
        fast = _fast_compile(ast) if not walker.problems else None
    except RecursionError:
        return _Analysis(None, (CelProblem(LIMIT, msg.TOO_COMPLEX),))
    compiled = CompiledExpression(
        source=source,
        ast=ast,
        event_refs=tuple(walker.event_refs),
        uses_trigger=walker.uses_trigger,
        uses_events=walker.uses_events,
        needs_all_events=walker.needs_all_events,
        uses_context_path=walker.uses_context_path,
        string_literals=frozenset(walker.literal_positions),
        literal_positions=dict(walker.literal_positions),
        fast=fast,
    )
    problems = tuple(walker.problems)
    run_dependent = compiled.uses_trigger or compiled.uses_events or compiled.uses_context_path
    if not problems and not run_dependent:
        # Folded, the value (or its error) is all that evaluating needs: the tree goes.
        return _Analysis(_fold(compiled), problems)
    return _Analysis(compiled, problems, nodes=sum(1 for _ in ast.iter_subtrees()))


def _fold(compiled: CompiledExpression) -> CompiledExpression:
    try:
        value = _run(compiled, {}, {}, DEFAULT_TIMEOUT)
    except CelError as error:
        return replace(compiled, ast=None, constant_problem=error.as_problem())
    return replace(compiled, ast=None, constant=value)


def _check_size(source: str) -> CelProblem | None:
    if len(source) > MAX_SOURCE_LENGTH:
        return CelProblem(LIMIT, msg.TOO_LONG.format(length=len(source), limit=MAX_SOURCE_LENGTH))
    depth = 0
    line, column = 1, 0
    quote = ""
    index = 0
    length = len(source)
    # Skips string literals and comments so that brackets inside them do not count.
    while index < length:
        char = source[index]
        index += 1
        column += 1
        if char == "\n":
            line, column = line + 1, 0
            if quote and len(quote) == 1:
                quote = ""
            continue
        if quote:
            if char == "\\":
                index += 1
                column += 1
            elif source.startswith(quote, index - 1):
                index += len(quote) - 1
                column += len(quote) - 1
                quote = ""
            continue
        if char in "\"'":
            quote = char * 3 if source.startswith(char * 3, index - 1) else char
            index += len(quote) - 1
            column += len(quote) - 1
        elif char == "/" and source.startswith("/", index):
            newline = source.find("\n", index)
            skipped = (newline if newline >= 0 else length) - index
            index += skipped
            column += skipped
        elif char in "([{":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                return CelProblem(LIMIT, msg.TOO_DEEP.format(limit=MAX_NESTING_DEPTH), line, column)
        elif char in ")]}":
            depth = max(depth - 1, 0)
    return None


def _string_literal_problem(ast: lark.Tree) -> CelProblem | None:
    """Refuse escapes the parser lets through: past U+10FFFF (celpy raises on them) or a lone
    surrogate, which cannot be encoded into a request, a page or a database row."""
    for token in ast.scan_values(
        lambda v: isinstance(v, lark.Token) and v.type in ("STRING_LIT", "MLSTRING_LIT")
    ):
        try:
            text = str(celstr(token))
        except ValueError:
            return CelProblem(SYNTAX, msg.BAD_ESCAPE, token.line, token.column)
        if _SURROGATE.search(text):
            return CelProblem(SYNTAX, msg.SURROGATE_ESCAPE, token.line, token.column)
    return None


def _syntax_problem(source: str, error: celpy.CELParseError) -> CelProblem:
    cause = error.__context__
    line, column = error.line, error.column
    message = msg.UNEXPECTED_END
    if isinstance(cause, lark.exceptions.UnexpectedCharacters):
        char = source[cause.pos_in_stream] if cause.pos_in_stream < len(source) else ""
        if char in "\"'":
            message = msg.UNTERMINATED_STRING.format(quote=char)
        else:
            message = msg.UNEXPECTED_CHARACTER.format(char=_quote(char))
    elif isinstance(cause, lark.exceptions.UnexpectedToken):
        token = cause.token
        if token.type == "$END":
            line, column = _end_position(source)
        else:
            message = msg.UNEXPECTED_TOKEN.format(token=_quote(str(token.value)))
    if not isinstance(line, int) or line < 1:
        line, column = None, None
    return CelProblem(SYNTAX, message, line, column)


def _end_position(source: str) -> tuple[int, int]:
    stripped = source.rstrip()
    lines = stripped.split("\n") if stripped else [""]
    return len(lines), len(lines[-1]) + 1


def _quote(text: str) -> str:
    text = text if len(text) <= 40 else text[:39] + "…"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tree_depth(tree: lark.Tree) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, lark.Tree))
    return deepest


def _single_child_chain(tree: Any) -> Any:
    while (
        isinstance(tree, lark.Tree)
        and tree.data in _PASS_THROUGH
        and len(tree.children) == 1
        and isinstance(tree.children[0], lark.Tree)
    ):
        tree = tree.children[0]
    return tree


def _string_literal(tree: Any) -> tuple[str, lark.Token] | None:
    node = _single_child_chain(tree)
    if isinstance(node, lark.Tree) and node.data == "literal" and node.children:
        token = node.children[0]
        if isinstance(token, lark.Token) and token.type in ("STRING_LIT", "MLSTRING_LIT"):
            return str(celstr(token)), token
    return None


def _bare_ident(tree: Any) -> lark.Token | None:
    node = _single_child_chain(tree)
    if isinstance(node, lark.Tree) and node.data == "ident":
        token = node.children[0]
        if isinstance(token, lark.Token):
            return token
    return None


def _arguments(tree: lark.Tree, first: int) -> list[lark.Tree]:
    if len(tree.children) > first and isinstance(tree.children[first], lark.Tree):
        return [c for c in tree.children[first].children if isinstance(c, lark.Tree)]
    return []


class _Walker:
    """Find the names, functions and events an expression refers to, with positions."""

    def __init__(self) -> None:
        self.problems: list[CelProblem] = []
        self.event_refs: list[_EventRef] = []
        self.literal_positions: dict[str, tuple[int, int]] = {}
        self.uses_trigger = False
        self.uses_events = False
        self.needs_all_events = False
        self.uses_context_path = False

    def problem(self, kind: str, message: str, token: Any) -> None:
        self.problems.append(CelProblem(kind, message, _line(token), _column(token)))

    def walk(self, node: lark.Tree, bound: frozenset[str]) -> None:
        data = node.data
        if data in ("ident", "dot_ident"):
            self.name(node.children[0], bound if data == "ident" else frozenset())
        elif data in ("ident_arg", "dot_ident_arg"):
            self.call(node, bound)
        elif data == "member_dot_arg":
            self.method(node, bound)
        elif data == "member_index" and self.events_member(node.children[0], bound):
            literal = _string_literal(node.children[1])
            if literal is None:
                self.uses_events = self.needs_all_events = True
                self.walk(node.children[1], bound)
            else:
                self.event(literal[0], literal[1])
                self.literal(literal[0], literal[1])
        elif data == "member_dot" and self.events_member(node.children[0], bound):
            token = node.children[1]
            self.event(str(token), token)
        elif data == "literal":
            literal = _string_literal(node)
            if literal is not None:
                self.literal(*literal)
        else:
            for child in node.children:
                if isinstance(child, lark.Tree):
                    self.walk(child, bound)

    def events_member(self, tree: Any, bound: frozenset[str]) -> bool:
        token = _bare_ident(tree)
        return token is not None and token == EVENTS and EVENTS not in bound

    def event(self, name: str, token: Any) -> None:
        self.uses_events = True
        self.event_refs.append(_EventRef(name, _line(token), _column(token)))

    def literal(self, value: str, token: Any) -> None:
        self.literal_positions.setdefault(value, (_line(token) or 0, _column(token) or 0))

    def name(self, token: Any, bound: frozenset[str]) -> None:
        name = str(token)
        if name in bound or name in _TYPE_NAMES:
            return
        if name == TRIGGER:
            self.uses_trigger = True
        elif name == EVENTS:
            self.uses_events = self.needs_all_events = True
        else:
            self.problem(UNKNOWN_NAME, msg.UNKNOWN_NAME.format(name=name), token)

    def call(self, node: lark.Tree, bound: frozenset[str]) -> None:
        token = node.children[0]
        name = str(token)
        arguments = _arguments(node, 1)
        if name not in _GLOBAL_FUNCTIONS:
            # Its arguments may bind variables the way macros do, so they are not checked.
            self.problem(UNKNOWN_NAME, msg.UNKNOWN_FUNCTION.format(name=name), token)
            return
        if name == CONTEXT_EVENT_PATH:
            self.context_path(token, arguments, bound)
            return
        for argument in arguments:
            self.walk(argument, bound)

    def context_path(self, token: Any, arguments: list[lark.Tree], bound: frozenset[str]) -> None:
        self.uses_context_path = True
        if len(arguments) != 1:
            self.problem(SYNTAX, msg.CONTEXT_PATH_ARGUMENTS, token)
        literal = _string_literal(arguments[0]) if len(arguments) == 1 else None
        if literal is None:
            for argument in arguments:
                self.walk(argument, bound)
            return
        path, literal_token = literal
        self.literal(path, literal_token)
        event, colon, _ = path.partition(":")
        if not colon or not event:
            self.problem(SYNTAX, msg.CONTEXT_PATH_FORMAT, literal_token)
        else:
            self.event_refs.append(_EventRef(event, _line(literal_token), _column(literal_token)))

    def method(self, node: lark.Tree, bound: frozenset[str]) -> None:
        member, token = node.children[0], node.children[1]
        name = str(token)
        arguments = _arguments(node, 2)
        self.walk(member, bound)
        if name not in _METHODS:
            self.problem(UNKNOWN_NAME, msg.UNKNOWN_FUNCTION.format(name=name), token)
            return
        if name in _BINDING_MACROS:
            if len(arguments) != 2:
                self.problem(SYNTAX, msg.MACRO_ARITY.format(name=name), token)
            else:
                variable = _bare_ident(arguments[0])
                if variable is None:
                    self.problem(SYNTAX, msg.MACRO_VARIABLE.format(name=name), token)
                else:
                    self.walk(arguments[1], bound | {str(variable)})
                return
        for argument in arguments:
            self.walk(argument, bound)


def _line(item: Any) -> int | None:
    if isinstance(item, lark.Token):
        return item.line
    meta = getattr(item, "meta", None)
    return getattr(meta, "line", None) if meta is not None else None


def _column(item: Any) -> int | None:
    if isinstance(item, lark.Token):
        return item.column
    meta = getattr(item, "meta", None)
    return getattr(meta, "column", None) if meta is not None else None


def caret(source: str, line: int | None, column: int | None) -> str:
    """Return the source line `line` and, under it, a caret at `column` (both 1-based)."""
    if not line:
        return ""
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1]
    if not column:
        return text
    # Tabs are kept so the caret lines up in any tab width.
    padding = "".join("\t" if char == "\t" else " " for char in text[: column - 1])
    padding += " " * max(column - 1 - len(text), 0)
    return f"{text}\n{padding}^"


# ---------------------------------------------------------------- evaluating


class _Timeout(BaseException):
    """Stop an evaluation; a BaseException so that no `except Exception` in celpy swallows it."""


class _BoundedEvaluator(Evaluator):
    """celpy's interpreter, checking a deadline at every tree node it visits."""

    def __init__(self, ast: lark.Tree, activation: Activation, deadline: float) -> None:
        super().__init__(ast, activation)
        self.deadline = deadline

    def visit(self, tree: lark.Tree) -> Any:
        if time.monotonic() > self.deadline:
            raise _Timeout
        return super().visit(tree)

    def visit_children(self, tree: lark.Tree) -> list[Any]:
        if time.monotonic() > self.deadline:
            raise _Timeout
        return super().visit_children(tree)

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        # Macro bodies run in sub-evaluators, so they must honour the same deadline.
        return _BoundedEvaluator(ast, self.activation, self.deadline)


class _SafeProblem(Exception):
    """Mark a CELEvalError made here; its args carry a message that is safe to show."""


# re2 runs in linear time, but by default it logs the failing pattern (maybe run data) to stderr.
_REGEX_OPTIONS = re2.Options()
_REGEX_OPTIONS.log_errors = False


def _matches(text: Any, pattern: Any) -> Any:
    if not isinstance(text, str) or not isinstance(pattern, str):
        return _safe_error(msg.BAD_ARGUMENTS.format(name="matches"))
    try:
        found = re2.search(pattern, text, _REGEX_OPTIONS)
    except re2.error:
        return _safe_error(msg.BAD_REGEX)
    return celtypes.BoolType(found is not None)


def _safe_error(detail: str, line: int | None = None, column: int | None = None) -> CELEvalError:
    return CELEvalError(detail, _SafeProblem, (detail, line, column))


def evaluate(
    expression: str | CompiledExpression,
    *,
    trigger: Mapping[str, Any] | None,
    events: Mapping[str, Mapping[str, Any]] | None,
    field: str = "",
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Evaluate an expression against a run and return a plain Python value."""
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
    if compiled.constant is not NOT_CONSTANT:
        value = compiled.constant
        return value if isinstance(value, str | int | float | None) else copy.deepcopy(value)
    try:
        return _run(compiled, trigger or {}, events or {}, timeout)
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
            msg.MUST_BE_STRING.format(field=label, type=_cel_type_name(value)),
            kind=TYPE,
            field=field,
        )
    if "\r" in value or "\n" in value:
        raise CelError(msg.NO_LINE_BREAKS.format(field=label), kind=EVALUATION, field=field)
    return value


def _run(
    compiled: CompiledExpression,
    trigger: Mapping[str, Any],
    events: Mapping[str, Mapping[str, Any]],
    timeout: float,
) -> Any:
    if compiled.fast is not None:
        value = _run_fast(compiled.fast, trigger, events)
        if value is not _MISS:
            return value
    deadline = time.monotonic() + timeout
    variables: dict[str, Any] = {}
    if compiled.uses_trigger:
        variables[TRIGGER] = _to_cel(trigger, TRIGGER)
    if compiled.uses_events:
        if compiled.needs_all_events:
            wanted: Collection[str] = events.keys()
        else:
            wanted = {ref.name for ref in compiled.event_refs}
        variables[EVENTS] = celtypes.MapType(
            {
                celtypes.StringType(name): _to_cel(events[name], f'events["{name}"]')
                for name in wanted
                if name in events
            }
        )
    functions = {"matches": _matches}
    if compiled.uses_context_path:
        functions[CONTEXT_EVENT_PATH] = _context_event_path(events, compiled)
    activation = Activation(vars=variables, functions=functions)
    failure: CelProblem | None = None
    try:
        value = _BoundedEvaluator(compiled.ast, activation, deadline).evaluate()
    except CELEvalError as error:
        failure = _explain(error, compiled)
    except _Timeout:
        failure = CelProblem(TIMEOUT, msg.TIMEOUT.format(seconds=timeout))
    except RecursionError:
        failure = CelProblem(LIMIT, msg.TOO_COMPLEX)
    except Exception:
        # Other exceptions may quote run data in their text, so only their existence is told.
        failure = CelProblem(EVALUATION, msg.NOT_EVALUABLE)
    if failure is not None:
        # Raised outside the except blocks so the celpy error (which quotes the whole
        # activation) is not chained to it as __context__.
        raise CelError.from_problem(failure)
    return _from_cel(value)


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
            return _to_cel(value, f'events["{event}"]')
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
            quoted = _quote(str(key))
            if cause is KeyError and _bare_ident(member) == EVENTS:
                return _at(UNKNOWN_EVENT, msg.UNKNOWN_EVENT.format(name=key), key)
            if cause is KeyError:
                return _at(EVALUATION, msg.NO_KEY.format(key=quoted, container=container), key)
            return _at(TYPE, msg.NO_FIELDS.format(key=quoted, container=container), key)
        if data == "member_index":
            member, index = tree.children[0], tree.children[1]
            container = _excerpt(source, member)
            key = _excerpt(source, index)
            if cause is KeyError and _bare_ident(member) == EVENTS:
                literal = _string_literal(index)
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
            name = _bare_ident(tree)
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
    return CelProblem(kind, detail, _line(where), _column(where))


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


# ---------------------------------------------------------------- the fast path

# celpy's interpreter needs a few hundred microseconds even for `"/c/" + trigger.id`, most of it
# converting payloads to celtypes. Expressions made only of literals, field and index access on
# trigger and events, contextEventPath("literal") and "+" are compiled to closures over the
# plain values instead. Anything they cannot answer exactly as CEL would (a missing key, mixed
# types, an overflow) returns _MISS, and the expression is run again by celpy, which then
# produces the error with its position.

_MISS: Any = object()
_Fast = Callable[[Any, Any], Any]


def _run_fast(fast: _Fast, trigger: Any, events: Any) -> Any:
    try:
        value = fast(trigger, events)
    except RecursionError:
        return _MISS
    if value is _MISS or value is None or type(value) in (str, bool, float):
        return value
    if type(value) is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else _MISS
    try:
        return _convert_out(_convert_in(value))
    except (_Unsupported, ValueError, UnicodeDecodeError, RecursionError):
        return _MISS


def _fast_compile(tree: lark.Tree) -> _Fast | None:
    node = _single_child_chain(tree)
    if not isinstance(node, lark.Tree):
        return None
    data = node.data
    if data == "literal":
        return _fast_literal(node.children[0])
    if data == "ident":
        name = str(node.children[0])
        if name == TRIGGER:
            return lambda trigger, events: trigger
        if name == EVENTS:
            return lambda trigger, events: events
        return None
    if data == "member_dot":
        return _fast_lookup(node.children[0], str(node.children[1]))
    if data == "member_index":
        key = _fast_literal_value(node.children[1])
        return None if key is _MISS else _fast_lookup(node.children[0], key)
    if data == "addition" and len(node.children) == 2:
        operator, right_tree = node.children
        if operator.data != "addition_add":
            return None
        left, right = _fast_compile(operator.children[0]), _fast_compile(right_tree)
        return None if left is None or right is None else _fast_add(left, right)
    if data == "ident_arg" and str(node.children[0]) == CONTEXT_EVENT_PATH:
        arguments = _arguments(node, 1)
        literal = _string_literal(arguments[0]) if len(arguments) == 1 else None
        return None if literal is None else _fast_context_path(literal[0])
    return None


def _fast_literal_value(tree: Any) -> Any:
    node = _single_child_chain(tree)
    if isinstance(node, lark.Tree) and node.data == "literal":
        token = node.children[0]
        if token.type in ("STRING_LIT", "MLSTRING_LIT"):
            return str(celstr(token))
        if token.type == "INT_LIT":
            try:
                return int(celtypes.IntType(token.value))
            except ValueError:
                return _MISS
    return _MISS


def _fast_literal(token: Any) -> _Fast | None:
    value = _fast_literal_value(lark.Tree("literal", [token]))
    return None if value is _MISS else (lambda trigger, events: value)


def _fast_lookup(container_tree: Any, key: Any) -> _Fast | None:
    container = _fast_compile(container_tree)
    if container is None:
        return None
    if isinstance(key, str):

        def lookup(trigger: Any, events: Any) -> Any:
            base = container(trigger, events)
            if isinstance(base, Mapping) and key in base:
                return base[key]
            return _MISS

        return lookup

    def index(trigger: Any, events: Any) -> Any:
        base = container(trigger, events)
        if isinstance(base, list | tuple) and 0 <= key < len(base):
            return base[key]
        return _MISS

    return index


def _fast_add(left: _Fast, right: _Fast) -> _Fast:
    def add(trigger: Any, events: Any) -> Any:
        a = left(trigger, events)
        if a is _MISS:
            return _MISS
        b = right(trigger, events)
        kind = type(a)
        # CEL adds only like types; bool is not a number, and ints must stay within int64.
        if kind is not type(b) or kind not in (str, int, float, list):
            return _MISS
        total = a + b
        if kind is int and not _INT64_MIN <= total <= _INT64_MAX:
            return _MISS
        return total

    return add


def _fast_context_path(path: str) -> _Fast | None:
    event, colon, rest = path.partition(":")
    if not colon or not event:
        return None
    segments = rest.split(".") if rest else []

    def context_path(trigger: Any, events: Any) -> Any:
        value = events.get(event, _MISS) if isinstance(events, Mapping) else _MISS
        for segment in segments:
            if value is _MISS:
                return _MISS
            if isinstance(value, Mapping):
                value = value.get(segment, _MISS)
            elif (
                isinstance(value, list | tuple)
                and is_ascii_digits(segment)
                and int(segment) < len(value)
            ):
                value = value[int(segment)]
            else:
                return _MISS
        return value

    return context_path


# ---------------------------------------------------------------- value conversion


class _Unsupported(Exception):
    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


def _to_cel(value: Any, where: str) -> Any:
    try:
        return _convert_in(value)
    except _Unsupported as error:
        detail = msg.UNSUPPORTED_INPUT.format(where=where, type=error.type_name)
    except ValueError:
        detail = msg.INPUT_OUT_OF_RANGE.format(where=where)
    except RecursionError:
        detail = msg.TOO_COMPLEX
    raise CelError(detail, kind=TYPE)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TRUE = celtypes.BoolType(True)
_FALSE = celtypes.BoolType(False)


def _convert_in(value: Any) -> Any:
    # The base-class constructors skip celtypes' own, which re-check and re-wrap every value
    # and made converting an event payload cost more than evaluating the expression.
    if isinstance(value, str):
        return str.__new__(celtypes.StringType, value)
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError("out of range")
        return int.__new__(celtypes.IntType, value)
    if isinstance(value, float):
        return float.__new__(celtypes.DoubleType, value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        converted = celtypes.MapType()
        dict.update(converted, {_convert_in(k): _convert_in(v) for k, v in value.items()})
        return converted
    if isinstance(value, list | tuple):
        return celtypes.ListType([_convert_in(item) for item in value])
    if isinstance(value, bytes):
        return celtypes.BytesType(value)
    if isinstance(value, datetime.datetime):
        return celtypes.TimestampType(value)
    if isinstance(value, datetime.timedelta):
        return celtypes.DurationType(value)
    raise _Unsupported(type(value).__name__)


def _from_cel(value: Any) -> Any:
    try:
        return _convert_out(value)
    except _Unsupported as error:
        detail = msg.UNSUPPORTED_RESULT.format(type=error.type_name)
    except UnicodeDecodeError:
        detail = msg.BYTES_NOT_UTF8
    except RecursionError:
        detail = msg.TOO_COMPLEX
    raise CelError(detail, kind=TYPE)


def _convert_out(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool | celtypes.BoolType):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value).decode("utf-8")
    if isinstance(value, Mapping):
        return {_convert_out(k): _convert_out(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert_out(item) for item in value]
    if isinstance(value, datetime.datetime | datetime.timedelta):
        # celpy renders timestamps as RFC 3339 and durations as "3600s", as CEL does.
        return str(value)
    raise _Unsupported(_cel_type_name(value))


_CEL_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "bool"),
    (celtypes.BoolType, "bool"),
    (celtypes.UintType, "uint"),
    (int, "int"),
    (float, "double"),
    (str, "string"),
    (bytes, "bytes"),
    (datetime.datetime, "timestamp"),
    (datetime.timedelta, "duration"),
    (Mapping, "map"),
    (list, "list"),
    (type(None), "null"),
)


def _cel_type_name(value: Any) -> str:
    for kind, name in _CEL_TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return "type" if isinstance(value, type) else "value of another kind"
