"""The run engine: execute runs step by step on workers, with retries.

A worker claims a run with one conditional UPDATE (queued or retrying -> running), so a
run, and therefore each of its steps, is executed by exactly one worker even when several
workers, on several machines, drain the same queue. A worker never sleeps on a run: a
failed attempt that may be retried leaves the run "retrying" with the time it is due, and
the caller schedules a new task for then (see tasks.execute_run).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from orchestration.failures import log_unexpected
from orchestration.models import Run
from orchestration.processes import routes, step_kinds
from orchestration.processes.services import step_run_record, step_skip_record
from orchestration.processes.step_kinds import StepResult
from orchestration.runs import liveness, plans

logger = logging.getLogger(__name__)

STEP_CRASHED = "The step failed unexpectedly; the details are in the server log."
RUN_CRASHED = "The run failed unexpectedly; the details are in the server log."


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, capped; Retry-After wins when it is given."""
    cap = settings.RUN_RETRY_MAX_DELAY_SECONDS
    if retry_after is not None:
        return min(retry_after, cap)
    base = settings.RUN_RETRY_BASE_DELAY_SECONDS * 2 ** (attempt - 1)
    return random.uniform(0, min(base, cap))  # noqa: S311 - jitter, not security


def _status(run_id: int) -> str:
    # Read back when a conditional update found the run not where it expected: claimed
    # elsewhere, cancelled, reaped, or deleted with its process ("").
    return Run.objects.filter(pk=run_id).values_list("status", flat=True).first() or ""


@dataclass(frozen=True)
class Outcome:
    """Where a run stands after a worker's turn: its status, and when a retry is due."""

    status: str
    retry_at: datetime | None = None


def execute(run_id: int) -> Outcome:
    """Execute a queued (or due) run until it ends or waits for a retry."""
    liveness.reap_if_due()
    claimed = Run.objects.filter(pk=run_id, status__in=Run.CLAIMABLE).update(
        status=Run.Status.RUNNING, started_at=Now(), heartbeat_at=Now(), retry_at=None
    )
    if not claimed:
        return Outcome(_status(run_id))
    run = Run.objects.get(pk=run_id)
    with liveness.beating(run.pk):
        try:
            return _execute_claimed(run)
        except Exception as exc:
            # A claimed run must end, never stay "running" until the sweep blames its worker.
            log_unexpected(logger, f"Run {run.pk} failed unexpectedly", exc)
            return Outcome(_finish(run, Run.Status.FAILED, RUN_CRASHED))


def _execute_claimed(run: Run) -> Outcome:
    steps, events = plans.steps_for_run(run.version_id)
    context = {"trigger": run.input, "events": dict(run.events)}
    for index, (step, start) in enumerate(zip(steps, routes.start_events(steps), strict=True)):
        if index < run.next_position:
            continue
        if start is not None and start not in context["events"]:
            if not _skip(run, step, start):
                return Outcome(_status(run.pk))
            continue
        kind = step_kinds.get(step.kind)
        last = index == len(steps) - 1
        result, outcome = _attempt_step(run, step, kind, context, events, last=last)
        if outcome is not None:  # failed, stopped meanwhile, or waiting for a retry
            return outcome
    if run.status == Run.Status.SUCCEEDED:  # the last step's progress update finished it
        return Outcome(run.status)
    return Outcome(_finish(run, Run.Status.SUCCEEDED, ""))  # there was nothing left to run


def _attempt_step(run: Run, step, kind, context: dict, events: dict, *, last: bool):
    """Make the step's next attempt; return its result, and an Outcome when the run stops
    here for now (cancelled meanwhile, or a retry scheduled)."""
    # Every attempt of a step carries the same key, so a retried POST is not applied twice.
    # The run's random key, not its id: ids restart in every database (staging, a restored
    # dump), while an API keeps idempotency keys for days.
    attempt_key = f"run-{run.key}-step-{step.key}"
    attempt = run.attempt
    try:
        result = kind.run(step, context=context, attempt_key=attempt_key)
    except Exception as exc:
        # A step kind that raises must fail the run, not leave it "running" for ever.
        log_unexpected(logger, f"Run {run.pk} step {step.key} raised", exc)
        result = StepResult(ok=False, error_stage="internal", error_message=STEP_CRASHED)
    # Retries come before routing: a 503 routed to an event is still retried first.
    retry = result.retryable and not result.ok and attempt < max(step.max_attempts, 1)
    if not retry:
        result = kind.route(step, result, context=context)
    delay = backoff_delay(attempt, result.retry_after) if retry else None
    # One transaction per attempt: its record, and the run's progress (finished too, after
    # the last step; or waiting for the retry), so a crash never leaves them apart.
    with transaction.atomic():
        step_run_record(
            step=step,
            actor=None,
            result=result,
            is_test=False,
            run=run,
            attempt=attempt,
            events=events,
            retry_delay_s=delay,
        )
        if result.ok:
            name = result.event or kind.event_name(step)
            if name:
                context["events"][name] = result.payload
            run.events = context["events"]
            run.next_position += 1
            run.attempt = 1
            progress = {
                "events": run.events,
                "next_position": run.next_position,
                "attempt": 1,
                "heartbeat_at": Now(),
            }
            if last:
                progress.update(status=Run.Status.SUCCEEDED, finished_at=Now())
                run.status = Run.Status.SUCCEEDED
        elif retry:
            # Python's clock, as the task queue's run_after is read with it too.
            retry_at = timezone.now() + timedelta(seconds=delay)
            progress = {
                "status": Run.Status.RETRYING,
                "attempt": attempt + 1,
                "retry_at": retry_at,
                "heartbeat_at": Now(),
            }
        else:  # the run fails with its step, in the same transaction
            message = f"{step.name}: {result.error_message}"[:2000]
            progress = {"status": Run.Status.FAILED, "finished_at": Now(), "error_message": message}
        still_running = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(**progress)
    if not still_running:
        return result, Outcome(_status(run.pk))  # cancelled, or failed by the sweep
    if not result.ok and not retry:
        return result, Outcome(Run.Status.FAILED)
    if retry:
        logger.info(
            "Run %s step %s attempt %s failed; retrying in %.1fs", run.pk, step.key, attempt, delay
        )
        return result, Outcome(Run.Status.RETRYING, retry_at=retry_at)
    return result, None


def _skip(run: Run, step, event: str) -> bool:
    """Record that the step's event never came and move past it; False if stopped meanwhile."""
    with transaction.atomic():
        step_skip_record(step=step, event=event, is_test=False, run=run)
        run.next_position += 1
        return bool(
            Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
                next_position=run.next_position, heartbeat_at=Now()
            )
        )


def _finish(run: Run, status: str, message: str) -> str:
    """Finish the run unless it was stopped meanwhile; return its final status."""
    finished = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        status=status, finished_at=Now(), error_message=message[:2000]
    )
    return status if finished else _status(run.pk)
