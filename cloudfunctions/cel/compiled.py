"""The compiled form of an expression, shared read-only between threads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import lark

from cloudfunctions.cel.errors import NOT_CONSTANT, CelProblem


@dataclass(frozen=True)
class EventRef:
    name: str
    line: int | None
    column: int | None


@dataclass(frozen=True, eq=False)
class CompiledExpression:
    """A parsed, analysed expression; immutable, so threads may share it."""

    source: str
    ast: lark.Tree | None = field(repr=False)  # None once folded to a constant
    event_refs: tuple[EventRef, ...] = field(repr=False)
    uses_trigger: bool = False
    uses_events: bool = False
    needs_all_events: bool = False
    uses_context_path: bool = False
    # Where `response` is first read, if it is: Result only (see compiler.check_expression).
    response_position: tuple[int | None, int | None] | None = None
    string_literals: frozenset[str] = field(default=frozenset(), repr=False)
    literal_positions: Mapping[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    constant: Any = NOT_CONSTANT
    constant_problem: CelProblem | None = None

    @property
    def is_constant(self) -> bool:
        """Tell whether the value was folded at compile time (or failed doing so)."""
        return self.constant is not NOT_CONSTANT or self.constant_problem is not None
