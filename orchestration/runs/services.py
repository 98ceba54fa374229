"""Writes for runs: start, cancel, re-run, and queue them for a worker."""

from __future__ import annotations

from django.db import transaction
from django.db.models.functions import Now

from orchestration.models import Process, Run
from orchestration.runs import tasks
from orchestration.runs.tasks import QUEUE_UNAVAILABLE

NOT_DEPLOYED = "The process has no live version: deploy it first."
CANCELLED_MESSAGE = "Cancelled by {user}."
ONLY_FAILED_RERUN = "Only a failed run can be re-run from its failed step."
ALREADY_RERUN = "This run was already re-run as run #{run}: re-run that one if it failed."


class RunRefused(Exception):
    pass


def run_start(*, process: Process, trigger: str, input: dict, actor=None) -> Run:
    """Queue a run of the live version; the worker picks it up after the commit."""
    if process.live_version_id is None:
        raise RunRefused(NOT_DEPLOYED)
    run = Run.objects.create(
        process=process,
        version_id=process.live_version_id,
        trigger=trigger,
        input=input,
        created_by=actor,
    )
    _enqueue(run)
    return run


def _enqueue(run: Run) -> None:
    def send() -> None:
        if not tasks.queue(run.pk):
            run.refresh_from_db(fields=["status", "error_message"])

    transaction.on_commit(send)


def run_cancel(*, run: Run, actor) -> bool:
    """Stop a queued, running or retrying run before its next step or attempt."""
    who = actor.get_username() if actor else "someone"
    return bool(
        Run.objects.filter(pk=run.pk, status__in=Run.ACTIVE).update(
            status=Run.Status.CANCELLED,
            finished_at=Now(),
            error_message=CANCELLED_MESSAGE.format(user=who),
        )
    )


def queue_refused(run: Run) -> bool:
    """Whether the task queue refused the run just started (see _enqueue)."""
    return run.status == Run.Status.FAILED and run.error_message == QUEUE_UNAVAILABLE


@transaction.atomic
def run_rerun(*, run: Run, actor) -> Run:
    """Start a new run from the failed step, with the captures the failed run had.

    Once per failed run: a second re-run (a double click, two people) would call the failed
    step's API twice, with different idempotency keys. The row lock makes the check hold
    when both arrive together.
    """
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.status != Run.Status.FAILED:
        raise RunRefused(ONLY_FAILED_RERUN)
    earlier = run.first_rerun()
    if earlier is not None:
        raise RunRefused(ALREADY_RERUN.format(run=earlier.pk))
    new = Run.objects.create(
        process=run.process,
        version=run.version,
        trigger=Run.Trigger.RERUN,
        input=run.input,
        events=run.events,
        next_position=run.next_position,
        rerun_of=run,
        created_by=actor,
    )
    _enqueue(new)
    return new
