"""Reads for runs: a run's steps as a timeline a person can follow."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestration.models import Run, Step, StepRun
from orchestration.processes import step_kinds


@dataclass
class StepTimeline:
    """One step of a run: its last attempt, the earlier ones, and its captured output."""

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


def run_timeline(*, run: Run) -> list[StepTimeline]:
    """Return every step of the run's version in order, with what happened to it."""
    timeline = {
        step.pk: StepTimeline(step)
        for step in Step.objects.filter(process_id=run.version_id).order_by("position")
    }
    attempts = run.step_runs.select_related("event").order_by("attempt", "started_at", "pk")
    for attempt in attempts:
        if attempt.step_id in timeline:
            timeline[attempt.step_id].attempts.append(attempt)
    for entry in timeline.values():
        last = entry.last
        if last is not None and last.captured is not None:
            entry.tree = step_kinds.value_tree(
                last.captured, event=last.event.name if last.event else ""
            )
    return list(timeline.values())


def run_export(*, run: Run) -> dict:
    """The run as JSON: input, status and every attempt (stored masked, so shareable)."""
    return {
        "run": run.pk,
        "process": run.process.name,
        "version": run.version.version_number,
        "status": run.status,
        "trigger": run.trigger,
        "input": run.input,
        "error": run.error_message,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "steps": [
            {
                "step": entry.step.name,
                "attempts": [
                    {
                        "attempt": a.attempt,
                        "outcome": a.outcome,
                        "duration_ms": a.duration_ms,
                        "request": a.request,
                        "output": a.captured,
                        "error": a.error_message,
                        "event": a.event.name if a.event else None,
                        "retried_after_s": a.retry_delay_s,
                        "retry_after_header_s": a.retry_after_s,
                    }
                    for a in entry.attempts
                ],
            }
            for entry in run_timeline(run=run)
        ],
    }
