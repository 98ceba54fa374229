"""The run engine: execute runs step by step on workers, with retries.

A worker claims a run with one conditional UPDATE (queued -> running), so a run, and
therefore each of its steps, is executed by exactly one worker even when several
workers, on several machines, drain the same queue.
"""

from __future__ import annotations

import logging
import random
import time

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now

from orchestration.failures import log_unexpected
from orchestration.models import Run
from orchestration.processes import step_kinds
from orchestration.processes.services import step_run_record
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


def execute(run_id: int) -> str:
    """Execute a queued run to its end; return its final status."""
    liveness.reap_if_due()
    claimed = Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING, started_at=Now(), heartbeat_at=Now()
    )
    if not claimed:
        return _status(run_id)
    run = Run.objects.get(pk=run_id)
    with liveness.beating(run.pk):
        try:
            return _execute_claimed(run)
        except Exception as exc:
            # A claimed run must end, never stay "running" until the sweep blames its worker.
            log_unexpected(logger, f"Run {run.pk} failed unexpectedly", exc)
            return _finish(run, Run.Status.FAILED, RUN_CRASHED)


def _execute_claimed(run: Run) -> str:
    steps, events = plans.steps_for_run(run.version_id)
    context = {"trigger": run.input, "events": dict(run.events)}
    for index, step in enumerate(steps):
        if index < run.next_position:
            continue
        kind = step_kinds.get(step.kind)
        outcome = _run_step(run, step, kind, context, events, last=index == len(steps) - 1)
        if outcome is None:  # stopped meanwhile
            return _status(run.pk)
        if not outcome.ok:
            return _finish(run, Run.Status.FAILED, f"{step.name}: {outcome.error_message}")
    if run.status == Run.Status.SUCCEEDED:  # the last step's progress update finished it
        return run.status
    return _finish(run, Run.Status.SUCCEEDED, "")  # there was nothing left to run


def _run_step(run: Run, step, kind, context: dict, events: dict, *, last: bool):
    # Every attempt of a step carries the same key, so a retried POST is not applied twice.
    # The run's random key, not its id: ids restart in every database (staging, a restored
    # dump), while an API keeps idempotency keys for days.
    attempt_key = f"run-{run.key}-step-{step.key}"
    name = kind.event_name(step)
    for attempt in range(1, max(step.max_attempts, 1) + 1):
        # A first attempt follows the claim or the previous step's progress update, which
        # both found the run running; a retry follows a sleep, during which it may be cancelled.
        if attempt > 1 and not liveness.report(run.pk):
            return None
        try:
            result = kind.run(step, context=context, attempt_key=attempt_key)
        except Exception as exc:
            # A step kind that raises must fail the run, not leave it "running" for ever.
            log_unexpected(logger, f"Run {run.pk} step {step.key} raised", exc)
            result = StepResult(ok=False, error_stage="internal", error_message=STEP_CRASHED)
        # One transaction per attempt: its record, and on success the run's progress
        # (finished too, after the last step), so a crash never leaves them apart.
        with transaction.atomic():
            step_run_record(
                step=step,
                actor=None,
                result=result,
                is_test=False,
                run=run,
                attempt=attempt,
                events=events,
            )
            if result.ok:
                if name:
                    context["events"][name] = result.payload
                run.events = context["events"]
                run.next_position = step_index = run.next_position + 1
                progress = {
                    "events": run.events,
                    "next_position": step_index,
                    "heartbeat_at": Now(),
                }
                if last:
                    progress.update(status=Run.Status.SUCCEEDED, finished_at=Now())
                    run.status = Run.Status.SUCCEEDED
                still_running = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
                    **progress
                )
        if result.ok and not still_running:
            return None  # stopped during the step: cancelled, or failed by the sweep
        if result.ok or not result.retryable or attempt == step.max_attempts:
            return result
        delay = backoff_delay(attempt, result.retry_after)
        logger.info(
            "Run %s step %s attempt %s failed; retrying in %.1fs", run.pk, step.key, attempt, delay
        )
        time.sleep(delay)
    return result


def _finish(run: Run, status: str, message: str) -> str:
    """Finish the run unless it was stopped meanwhile; return its final status."""
    finished = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        status=status, finished_at=Now(), error_message=message[:2000]
    )
    return status if finished else _status(run.pk)
