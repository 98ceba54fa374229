"""Steps as a person follows them through a run or a Test process: what each step did."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestration.models import Step, StepRun
from orchestration.processes import step_kinds


@dataclass
class StepTimeline:
    """One step: its last attempt, the earlier ones, and its captured output as a tree."""

    step: Step
    attempts: list[StepRun] = field(default_factory=list)
    tree: list = field(default_factory=list)

    @property
    def last(self) -> StepRun | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def retried(self) -> list[StepRun]:
        """The attempts before the last, each with why it failed and how long the run waited."""
        return self.attempts[:-1]


def step_timeline(steps: Iterable[Step], step_runs: Iterable[StepRun]) -> list[StepTimeline]:
    """Group step runs (in attempt order) under their steps, in the steps' order."""
    timeline = {step.pk: StepTimeline(step) for step in steps}
    for attempt in step_runs:
        if attempt.step_id in timeline:
            timeline[attempt.step_id].attempts.append(attempt)
    for entry in timeline.values():
        last = entry.last
        if last is not None and last.captured is not None:
            entry.tree = step_kinds.value_tree(
                last.captured, event=last.event.name if last.event else ""
            )
    return list(timeline.values())
