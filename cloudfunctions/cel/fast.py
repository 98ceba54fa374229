"""Answer the common expression shapes in plain Python, else leave them to celpy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lark
from celpy import celtypes
from celpy.evaluation import celstr

from cloudfunctions.cel.convert import INT64_MAX, INT64_MIN, Unsupported, convert_in, convert_out
from cloudfunctions.cel.syntax import (
    CONTEXT_EVENT_PATH,
    EVENTS,
    TRIGGER,
    arguments_of,
    single_child_chain,
    string_literal,
)
from orchestration.validators import is_ascii_digits

# celpy's interpreter needs a few hundred microseconds even for `"/c/" + trigger.id`, most of it
# converting payloads to celtypes. Expressions made only of literals, field and index access on
# trigger and events, contextEventPath("literal") and "+" are compiled to closures over the
# plain values instead. Anything they cannot answer exactly as CEL would (a missing key, mixed
# types, an overflow) returns MISS, and the expression is run again by celpy, which then
# produces the error with its position.

MISS: Any = object()
_Fast = Callable[[Any, Any], Any]


def run_fast(fast: _Fast, trigger: Any, events: Any) -> Any:
    try:
        value = fast(trigger, events)
    except RecursionError:
        return MISS
    if value is MISS or value is None or type(value) in (str, bool, float):
        return value
    if type(value) is int:
        return value if INT64_MIN <= value <= INT64_MAX else MISS
    try:
        return convert_out(convert_in(value))
    except (Unsupported, ValueError, UnicodeDecodeError, RecursionError):
        return MISS


def fast_compile(tree: lark.Tree) -> _Fast | None:
    node = single_child_chain(tree)
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
        return None if key is MISS else _fast_lookup(node.children[0], key)
    if data == "addition" and len(node.children) == 2:
        operator, right_tree = node.children
        if operator.data != "addition_add":
            return None
        left, right = fast_compile(operator.children[0]), fast_compile(right_tree)
        return None if left is None or right is None else _fast_add(left, right)
    if data == "ident_arg" and str(node.children[0]) == CONTEXT_EVENT_PATH:
        arguments = arguments_of(node, 1)
        literal = string_literal(arguments[0]) if len(arguments) == 1 else None
        return None if literal is None else _fast_context_path(literal[0])
    return None


def _fast_literal_value(tree: Any) -> Any:
    node = single_child_chain(tree)
    if isinstance(node, lark.Tree) and node.data == "literal":
        token = node.children[0]
        if token.type in ("STRING_LIT", "MLSTRING_LIT"):
            return str(celstr(token))
        if token.type == "INT_LIT":
            try:
                return int(celtypes.IntType(token.value))
            except ValueError:
                return MISS
    return MISS


def _fast_literal(token: Any) -> _Fast | None:
    value = _fast_literal_value(lark.Tree("literal", [token]))
    return None if value is MISS else (lambda trigger, events: value)


def _fast_lookup(container_tree: Any, key: Any) -> _Fast | None:
    container = fast_compile(container_tree)
    if container is None:
        return None
    if isinstance(key, str):

        def lookup(trigger: Any, events: Any) -> Any:
            base = container(trigger, events)
            if isinstance(base, Mapping) and key in base:
                return base[key]
            return MISS

        return lookup

    def index(trigger: Any, events: Any) -> Any:
        base = container(trigger, events)
        if isinstance(base, list | tuple) and 0 <= key < len(base):
            return base[key]
        return MISS

    return index


def _fast_add(left: _Fast, right: _Fast) -> _Fast:
    def add(trigger: Any, events: Any) -> Any:
        a = left(trigger, events)
        if a is MISS:
            return MISS
        b = right(trigger, events)
        kind = type(a)
        # CEL adds only like types; bool is not a number, and ints must stay within int64.
        if kind is not type(b) or kind not in (str, int, float, list):
            return MISS
        total = a + b
        if kind is int and not INT64_MIN <= total <= INT64_MAX:
            return MISS
        return total

    return add


def _fast_context_path(path: str) -> _Fast | None:
    event, colon, rest = path.partition(":")
    if not colon or not event:
        return None
    segments = rest.split(".") if rest else []

    def context_path(trigger: Any, events: Any) -> Any:
        value = events.get(event, MISS) if isinstance(events, Mapping) else MISS
        for segment in segments:
            if value is MISS:
                return MISS
            if isinstance(value, Mapping):
                value = value.get(segment, MISS)
            elif (
                isinstance(value, list | tuple)
                and is_ascii_digits(segment)
                and int(segment) < len(value)
            ):
                value = value[int(segment)]
            else:
                return MISS
        return value

    return context_path
