"""Which completion event starts each step, and whether a run has emitted it.

A process is a list of steps, but a step need not follow the one before it: it starts on
"Process start" or on any completion event an earlier step can emit (a 404 routed to
"order missing", say). Step kinds decide which event a step emits; this module only
matches events, so it knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestration.models import Step
from orchestration.processes import step_kinds
from orchestration.processes.selectors import steps_with_events_before

PROCESS_START = "start"
EVENT_PREFIX = "event:"

SKIPPED = "Skipped: it starts on “{event}”, which this run did not emit."
STARTS_ON_UNKNOWN = "Starts on “{event}”, which no earlier step emits."


def starts_on_event(name: str) -> str:
    """The stored `Step.starts_on` for a completion event."""
    return f"{EVENT_PREFIX}{name}"


def start_events(steps: Sequence[Step]) -> list[str | None]:
    """Return the event each step starts on, in order; None for the process start.

    By default a step starts on the event the step before it emits on success, so a
    process built before routing behaves as it did: a straight list.
    """
    starts: list[str | None] = []
    previous: str | None = None
    for index, step in enumerate(steps):
        if step.starts_on == PROCESS_START:
            starts.append(None)
        elif step.starts_on.startswith(EVENT_PREFIX):
            starts.append(step.starts_on.removeprefix(EVENT_PREFIX))
        else:
            starts.append(previous if index else None)
        previous = step_kinds.get(step.kind).event_name(step)
    return starts


def may_emit(steps: Sequence[Step]) -> list[set[str]]:
    """Return, for each step, the events some earlier step can emit."""
    return [set(before) for _, before in steps_with_events_before(steps)]


def unreachable_start(step: Step, start: str | None, earlier: set[str]) -> str | None:
    """Why the step could never start (an event no earlier step emits), or None."""
    if start is None or start in earlier:
        return None
    if not step.starts_on and not earlier:
        return None  # the previous step is not configured yet: its own problem says so
    return STARTS_ON_UNKNOWN.format(event=start)


def certain_events(steps: Sequence[Step], step: Step) -> set[str]:
    """Return the events every run reaching `step` has emitted: its start event, the start
    of the step that emits it, and so on back to the process start. Other earlier events
    may be absent on this path (another route was taken)."""
    starts = start_events(steps)
    index = [s.pk for s in steps].index(step.pk)
    certain: set[str] = set()
    event = starts[index]
    while event is not None and event not in certain:
        certain.add(event)
        emitters = [
            i for i in range(index) if event in step_kinds.get(steps[i].kind).event_names(steps[i])
        ]
        if len(emitters) != 1:
            break  # emitted by several steps: which one ran depends on the run
        index = emitters[0]
        event = starts[index]
    return certain
