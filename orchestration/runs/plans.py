"""What a deployed version runs, loaded once per worker process: a version never changes.

Loading a version's steps costs more than the rest of a run's database work together, and
a worker runs the same versions over and over. What a version only refers to (a cloud
function's connection, which an administrator may edit at any time) is loaded afresh for
every run by the step kinds' `bind`.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass

from orchestration.models import CompletionEvent, Step
from orchestration.processes import step_kinds

MAX_CACHED_VERSIONS = 256


@dataclass(frozen=True)
class VersionPlan:
    steps: tuple[Step, ...]
    events: dict[str, CompletionEvent]


_plans: OrderedDict[int, VersionPlan] = OrderedDict()
_lock = threading.Lock()


def steps_for_run(version_id: int) -> tuple[list[Step], dict[str, CompletionEvent]]:
    """Return the version's steps, in order, ready to run, and its events by name.

    The steps are this run's own copies: binding fresh connections to them never touches
    what another run (another thread) holds.
    """
    plan = _plan(version_id)
    steps = [copy.copy(step) for step in plan.steps]
    for kind in step_kinds.all_kinds():
        kind.bind(steps)
    return steps, plan.events


def forget_all() -> None:
    """Drop every cached plan (tests reuse primary keys after rolling back)."""
    with _lock:
        _plans.clear()


def _plan(version_id: int) -> VersionPlan:
    with _lock:
        plan = _plans.get(version_id)
        if plan is not None:
            _plans.move_to_end(version_id)
            return plan
    plan = _load(version_id)
    with _lock:
        _plans[version_id] = plan
        while len(_plans) > MAX_CACHED_VERSIONS:
            _plans.popitem(last=False)
    return plan


def _load(version_id: int) -> VersionPlan:
    owned = {name for kind in step_kinds.all_kinds() for name in kind.version_related}
    steps = Step.objects.filter(process_id=version_id).select_related("process", *owned)
    events = CompletionEvent.objects.filter(process_id=version_id)
    return VersionPlan(
        steps=tuple(steps.order_by("position", "pk")),
        events={event.name: event for event in events},
    )
