"""Reads for runs: a run's steps as a timeline a person can follow."""

from __future__ import annotations

from orchestration.models import Run, Step
from orchestration.processes.timeline import StepTimeline, step_timeline


def run_timeline(*, run: Run) -> list[StepTimeline]:
    """Return every step of the run's version in order, with what happened to it."""
    steps = Step.objects.filter(process_id=run.version_id).order_by("position", "pk")
    attempts = run.step_runs.select_related("event").order_by("attempt", "started_at", "pk")
    return step_timeline(steps, attempts)


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
