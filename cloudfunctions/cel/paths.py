"""CEL paths to the values of a captured payload: the tree and the leaves the editor offers.

Only this package knows CEL's spelling (identifiers, reserved words, string literals), so the
process domain never does; the editor asks for a tree or the leaves and gets CEL back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cloudfunctions.cel.literals import cel_string_literal

# CEL identifiers are ASCII; a reserved word or any other key is selected with ["…"].
# https://github.com/google/cel-spec/blob/master/doc/langdef.md#syntax
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = {
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
    "true",
    "false",
    "null",
}
MAX_NODES = 500


@dataclass(frozen=True)
class Node:
    path: str  # a CEL expression selecting this value
    label: str  # the key or index shown in the tree
    depth: int
    value: str  # JSON text of a leaf; "" for maps and lists
    is_leaf: bool


def child_path(parent: str, key: str | int) -> str:
    """Return the CEL expression selecting `key` (a map key or a list index) of `parent`."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENT.fullmatch(key) and key not in _RESERVED:
        return f"{parent}.{key}"
    return f"{parent}[{cel_string_literal(key)}]"


def event_root(name: str) -> str:
    """Return the CEL expression selecting an event's payload."""
    return f"events[{cel_string_literal(name)}]"


def tree(root: str, value: Any, *, label: str = "", depth: int = 0) -> list[Node]:
    """Flatten value into nodes, depth first, at most MAX_NODES of them."""
    nodes: list[Node] = []

    def walk(path: str, label: str, value: Any, depth: int) -> None:
        if len(nodes) >= MAX_NODES:
            return
        if isinstance(value, dict):
            nodes.append(Node(path, label, depth, "", False))
            for key, child in value.items():
                walk(child_path(path, str(key)), str(key), child, depth + 1)
        elif isinstance(value, list):
            nodes.append(Node(path, label, depth, "", False))
            for index, child in enumerate(value):
                walk(child_path(path, index), f"[{index}]", child, depth + 1)
        else:
            nodes.append(
                Node(path, label, depth, json.dumps(value, ensure_ascii=False)[:200], True)
            )

    walk(root, label or root, value, depth)
    return nodes


def leaves(events: dict[str, Any], samples: set[str] | frozenset[str] = frozenset()) -> list[dict]:
    """Every leaf path of every event, for the autocomplete list of CEL fields."""
    out = []
    for name, payload in events.items():
        for node in tree(event_root(name), payload):
            if node.is_leaf:
                out.append({"path": node.path, "value": node.value, "sample": name in samples})
    return out


def value_tree(value: Any, *, event: str | None = None) -> list[Node]:
    """The tree of a run's input (`trigger`), of an event's payload, or ("") of an answer
    that emitted no event."""
    if event is None:
        return tree("trigger", value)
    return tree(event_root(event) if event else "response", value)
