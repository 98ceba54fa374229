"""Amazon Connect operations, read from botocore's own service model, as editor fills.

URI placeholders: a requestUri like `/instance/{InstanceId}/users` becomes the CEL
concatenation `"/instance/" + "INSTANCE_ID" + "/users"`. It evaluates as it stands, and
the designer swaps the quoted placeholder for any expression, e.g. `trigger.instanceId`,
without touching the literal parts around it. Query and header rows use the same
placeholders; body values are typed blanks ("" / 0 / false / {} / []).
"""

from __future__ import annotations

import functools
import html
import json
import re
from dataclasses import dataclass
from typing import Any

from cloudfunctions import amazon_connect
from cloudfunctions.cel.literals import cel_string_literal

__all__ = [
    "MAX_BODY_DEPTH",
    "SUMMARY_LENGTH",
    "UNKNOWN_OPERATION",
    "Operation",
    "amazon_connect_operations",
    "body_idempotency_token",
    "operation_fill",
    "placeholder",
    "request_uri_expression",
]

SERVICE = amazon_connect.SERVICE
UNKNOWN_OPERATION = "Amazon Connect has no operation named “{name}”."
SUMMARY_LENGTH = 120
# Self-referencing shapes would recurse forever; past this depth a structure stays {}.
MAX_BODY_DEPTH = 6

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# Every Connect operation in preview opens with this notice; the summary skips it.
_PREVIEW_NOTICE = re.compile(r"^This API is in preview release\b", re.I)
_BODY_LOCATIONS = (None, "")
_TYPED_BLANKS: dict[str, Any] = {
    "string": "",
    "blob": "",
    "integer": 0,
    "long": 0,
    "float": 0,
    "double": 0,
    "boolean": False,
    "list": [],
    "map": {},
}


@dataclass(frozen=True)
class _Route:
    """Where an operation is served, and its idempotency-token member sent in the body."""

    name: str
    pattern: re.Pattern[str]
    token_member: str | None


@dataclass(frozen=True)
class Operation:
    """One Amazon Connect API operation as the picker lists it."""

    name: str
    method: str
    request_uri: str
    summary: str


@functools.cache
def _operations() -> tuple[Operation, ...]:
    model = amazon_connect.service_model()
    operations = []
    for name in sorted(model.operation_names):
        operation = model.operation_model(name)
        operations.append(
            Operation(
                name=name,
                method=operation.http.get("method", "POST"),
                request_uri=operation.http.get("requestUri", "/"),
                summary=_summary(operation.documentation or ""),
            )
        )
    return tuple(operations)


def amazon_connect_operations() -> list[Operation]:
    """Return every operation of botocore's connect model, sorted by name."""
    return list(_operations())


def _summary(documentation: str) -> str:
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", documentation))).strip()
    sentences = [s for s in _SENTENCE_END.split(text) if not _PREVIEW_NOTICE.match(s)]
    first = sentences[0].strip() if sentences else ""
    if len(first) > SUMMARY_LENGTH:
        first = first[: SUMMARY_LENGTH - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return first


def placeholder(name: str) -> str:
    """Return the UPPER_SNAKE placeholder for a member name: InstanceId -> INSTANCE_ID."""
    name = name.rstrip("+")
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"[^A-Za-z0-9]+", "_", spaced).strip("_").upper()


def request_uri_expression(path: str) -> str:
    """Return a CEL expression for a requestUri path, each {Name} a quoted placeholder."""
    parts = []
    position = 0
    for match in _PLACEHOLDER.finditer(path):
        if match.start() > position:
            parts.append(cel_string_literal(path[position : match.start()]))
        parts.append(cel_string_literal(placeholder(match.group(1))))
        position = match.end()
    if position < len(path) or not parts:
        parts.append(cel_string_literal(path[position:]))
    return " + ".join(parts)


def _blank(shape, depth: int) -> Any:
    if shape.type_name == "structure":
        if depth >= MAX_BODY_DEPTH:
            return {}
        return {
            member.serialization.get("name", name): _blank(member, depth + 1)
            for name, member in shape.members.items()
            if name in shape.required_members
        }
    if shape.type_name == "timestamp":
        # rest-json sends body timestamps as epoch seconds unless the shape says otherwise.
        return "" if shape.serialization.get("timestampFormat") == "iso8601" else 0
    blank = _TYPED_BLANKS.get(shape.type_name, {})
    return type(blank)() if isinstance(blank, list | dict) else blank


def operation_fill(name: str) -> dict:
    """Return method, CEL uri, JSON body skeleton and query/header rows for an operation."""
    model = amazon_connect.service_model()
    if name not in model.operation_names:
        raise ValueError(UNKNOWN_OPERATION.format(name=str(name)[:80]))
    operation = model.operation_model(name)
    path, _, inline_query = operation.http.get("requestUri", "/").partition("?")
    query = []
    for pair in filter(None, inline_query.split("&")):
        key, _, value = pair.partition("=")
        query.append({"key": cel_string_literal(key), "value": cel_string_literal(value)})
    headers = []
    body: dict[str, Any] = {}
    has_body_members = False
    shape = operation.input_shape
    members = shape.members if shape is not None else {}
    required = set(shape.required_members) if shape is not None else set()
    for member_name, member in members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", member_name)
        if location in _BODY_LOCATIONS:
            has_body_members = True
            if member_name in required:
                body[wire_name] = _blank(member, 1)
        elif member_name not in required:
            continue
        elif location == "querystring":
            query.append(_row(wire_name, member_name))
        elif location == "header":
            headers.append(_row(wire_name, member_name))
    return {
        "method": operation.http.get("method", "POST"),
        "uri": request_uri_expression(path),
        "body": json.dumps(body, indent=2) if has_body_members else "",
        "query": query,
        "headers": headers,
    }


def _row(wire_name: str, member_name: str) -> dict[str, str]:
    return {
        "key": cel_string_literal(wire_name),
        "value": cel_string_literal(placeholder(member_name)),
    }


@functools.cache
def _routes() -> dict[str, tuple[_Route, ...]]:
    """Every operation's route by HTTP method, the most literal first, so that a fixed
    segment (`/users/search`) wins over a placeholder (`/users/{UserId}`)."""
    model = amazon_connect.service_model()
    ranked: dict[str, list[tuple[tuple[int, int], _Route]]] = {}
    for name in model.operation_names:
        operation = model.operation_model(name)
        path = operation.http.get("requestUri", "/").partition("?")[0]
        parts = []
        position = 0
        literal = 0
        for match in _PLACEHOLDER.finditer(path):
            parts.append(re.escape(path[position : match.start()]))
            literal += match.start() - position
            # {Name+} is a greedy label: it spans several segments.
            parts.append(".+" if match.group(1).endswith("+") else "[^/]+")
            position = match.end()
        parts.append(re.escape(path[position:]))
        literal += len(path) - position
        route = _Route(name, re.compile("".join(parts)), _body_token_member(operation))
        method = operation.http.get("method", "POST").upper()
        ranked.setdefault(method, []).append(((-literal, -len(path)), route))
    return {
        method: tuple(route for _, route in sorted(routes, key=lambda item: item[0]))
        for method, routes in ranked.items()
    }


def _body_token_member(operation) -> str | None:
    shape = operation.input_shape
    if shape is None or shape.serialization.get("payload"):
        return None  # no input, or a body that is one member rather than the structure
    for member_name, member in shape.members.items():
        if (
            member.metadata.get("idempotencyToken")
            and member.serialization.get("location") in _BODY_LOCATIONS
        ):
            return member.serialization.get("name", member_name)
    return None


@functools.lru_cache(maxsize=1024)
def body_idempotency_token(method: str, path: str) -> str | None:
    """Return the JSON body member that carries the idempotency token of the Amazon Connect
    operation served at ``method`` ``path`` (e.g. "ClientToken" for PUT
    /contact/outbound-voice), or None when no operation matches or it has no such member.

    ``path`` is the request path as sent, without the query string.
    """
    for route in _routes().get(method.upper(), ()):
        if route.pattern.fullmatch(path):
            return route.token_member
    return None
