"""Find the names, functions and events an expression refers to, and what is wrong."""

from __future__ import annotations

from typing import Any

import lark
from celpy.evaluation import base_functions

from cloudfunctions.cel import messages as msg
from cloudfunctions.cel.compiled import EventRef
from cloudfunctions.cel.errors import SYNTAX, UNKNOWN_NAME, CelProblem
from cloudfunctions.cel.syntax import (
    CONTEXT_EVENT_PATH,
    EVENTS,
    RESPONSE,
    TRIGGER,
    arguments_of,
    bare_ident,
    column_of,
    line_of,
    string_literal,
)

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


class Walker:
    """Find the names, functions and events an expression refers to, with positions."""

    def __init__(self) -> None:
        self.problems: list[CelProblem] = []
        self.event_refs: list[EventRef] = []
        self.literal_positions: dict[str, tuple[int, int]] = {}
        self.uses_trigger = False
        self.uses_events = False
        self.needs_all_events = False
        self.uses_context_path = False
        self.response_position: tuple[int | None, int | None] | None = None

    def problem(self, kind: str, message: str, token: Any) -> None:
        self.problems.append(CelProblem(kind, message, line_of(token), column_of(token)))

    def walk(self, node: lark.Tree, bound: frozenset[str]) -> None:
        data = node.data
        if data in ("ident", "dot_ident"):
            self.name(node.children[0], bound if data == "ident" else frozenset())
        elif data in ("ident_arg", "dot_ident_arg"):
            self.call(node, bound)
        elif data == "member_dot_arg":
            self.method(node, bound)
        elif data == "member_index" and self.events_member(node.children[0], bound):
            literal = string_literal(node.children[1])
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
            literal = string_literal(node)
            if literal is not None:
                self.literal(*literal)
        else:
            for child in node.children:
                if isinstance(child, lark.Tree):
                    self.walk(child, bound)

    def events_member(self, tree: Any, bound: frozenset[str]) -> bool:
        token = bare_ident(tree)
        return token is not None and token == EVENTS and EVENTS not in bound

    def event(self, name: str, token: Any) -> None:
        self.uses_events = True
        self.event_refs.append(EventRef(name, line_of(token), column_of(token)))

    def literal(self, value: str, token: Any) -> None:
        self.literal_positions.setdefault(value, (line_of(token) or 0, column_of(token) or 0))

    def name(self, token: Any, bound: frozenset[str]) -> None:
        name = str(token)
        if name in bound or name in _TYPE_NAMES:
            return
        if name == TRIGGER:
            self.uses_trigger = True
        elif name == EVENTS:
            self.uses_events = self.needs_all_events = True
        elif name == RESPONSE:
            self.response_position = self.response_position or (line_of(token), column_of(token))
        else:
            self.problem(UNKNOWN_NAME, msg.UNKNOWN_NAME.format(name=name), token)

    def call(self, node: lark.Tree, bound: frozenset[str]) -> None:
        token = node.children[0]
        name = str(token)
        arguments = arguments_of(node, 1)
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
        literal = string_literal(arguments[0]) if len(arguments) == 1 else None
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
            self.event_refs.append(
                EventRef(event, line_of(literal_token), column_of(literal_token))
            )

    def method(self, node: lark.Tree, bound: frozenset[str]) -> None:
        member, token = node.children[0], node.children[1]
        name = str(token)
        arguments = arguments_of(node, 2)
        self.walk(member, bound)
        if name not in _METHODS:
            self.problem(UNKNOWN_NAME, msg.UNKNOWN_FUNCTION.format(name=name), token)
            return
        if name in _BINDING_MACROS:
            if len(arguments) != 2:
                self.problem(SYNTAX, msg.MACRO_ARITY.format(name=name), token)
            else:
                variable = bare_ident(arguments[0])
                if variable is None:
                    self.problem(SYNTAX, msg.MACRO_VARIABLE.format(name=name), token)
                else:
                    self.walk(arguments[1], bound | {str(variable)})
                return
        for argument in arguments:
            self.walk(argument, bound)
