"""Background tasks (django-tasks): the same code on one worker or many."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models.functions import Now
from django_tasks import task

from orchestration.models import Run
from orchestration.runs import engine

logger = logging.getLogger(__name__)

QUEUE_UNAVAILABLE = "The run could not be queued: the task queue did not answer."


@task()
def execute_run(run_id: int) -> str:
    outcome = engine.execute(run_id)
    if outcome.retry_at is not None:
        # The worker is free again at once: the retry is a task of its own, due later.
        queue(run_id, run_after=outcome.retry_at)
    return outcome.status


def queue(run_id: int, *, run_after: datetime | None = None) -> bool:
    """Hand a run to the task queue; fail it, with why, when the queue refuses."""
    try:
        if run_after is None:
            execute_run.enqueue(run_id)
        else:
            execute_run.using(run_after=run_after).enqueue(run_id)
        return True
    except Exception as exc:
        # Redis down, say: a run left waiting with no task would wait for ever. Failed, it
        # keeps its input, and "Re-run from failed step" starts it from where it stopped.
        logger.error("Queueing run %s failed: %s", run_id, type(exc).__name__)
        Run.objects.filter(pk=run_id, status__in=Run.CLAIMABLE).update(
            status=Run.Status.FAILED, finished_at=Now(), error_message=QUEUE_UNAVAILABLE
        )
        return False
