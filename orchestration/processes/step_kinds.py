"""The registry of step kinds: how the engine and the editor reach a kind without importing it.

`cloudfunctions` registers the cloud-function kind when its app is ready, so this
package never imports HTTP or auth code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class StepResult:
    """What running one step produced: the emitted event's payload, or why it failed."""

    ok: bool
    payload: dict | None = None
    request: dict = field(default_factory=dict)  # as sent, secrets masked
    error_stage: str = ""
    error_message: str = ""
    duration_ms: float = 0.0
    retryable: bool = False
    retry_after: float | None = None
    # The completion event to emit when ok, chosen by the kind (an outcome route); None
    # means the step's own event (`StepKind.event_name`).
    event: str | None = None


class StepKind(Protocol):
    # Relations to load with steps so that checking many steps costs no query per step.
    select_related: tuple[str, ...]
    # The part of them a deployed version owns: workers cache it (see orchestration.runs.plans).
    version_related: tuple[str, ...]

    def event_name(self, step) -> str | None:
        """Return the name of the completion event the step emits on success, if any."""

    def event_names(self, step) -> set[str]:
        """Return every completion event the step may emit (its outcome routes included)."""

    def problems(self, step, *, earlier_events: set[str]) -> list[str]:
        """Return why the step cannot run yet (empty when complete)."""

    def side_effect(self, step) -> str | None:
        """Say what running the step may change elsewhere ("POST to api.example.com"), so a
        Test asks first; None when it only reads."""

    def run(self, step, *, context: dict[str, Any], attempt_key: str | None = None) -> StepResult:
        """Execute the step on a context (`trigger`, `events`)."""

    def route(self, step, result: StepResult, *, context: dict[str, Any]) -> StepResult:
        """Choose the completion event an answer emits (and shape what it carries), or make
        it fail the run; called on the last attempt's result, after retries."""

    def bind(self, steps: list) -> None:
        """Attach, fresh, what a version's steps only refer to, for one run; steps of other
        kinds are in the list too."""

    def copy(self, source, target) -> None:
        """Copy the kind's configuration from one step to another (duplicate, deploy)."""

    def editor(self, request, step):
        """Return the response for the step's editor page."""


_registry: dict[str, StepKind] = {}


def register(kind: str, implementation: StepKind) -> None:
    _registry[kind] = implementation


def get(kind: str) -> StepKind:
    return _registry[kind]


def all_kinds() -> list[StepKind]:
    return list(_registry.values())


def select_related_all() -> set[str]:
    """Every relation some kind wants loaded with its steps."""
    return {name for kind in _registry.values() for name in kind.select_related}


# How a value reads as a tree of paths a designer maps from (`trigger.order.id`): the
# expression language belongs to the step kinds' side, which registers it, so the run
# pages show the same trees as a Test without knowing its syntax.
ValueTree = Callable[..., list]
_value_tree: ValueTree | None = None


def register_value_tree(build: ValueTree) -> None:
    global _value_tree
    _value_tree = build


def value_tree(value: Any, *, event: str | None = None) -> list:
    """Return the value as tree nodes rooted at the trigger, or at an event's payload."""
    return _value_tree(value, event=event) if _value_tree is not None else []
