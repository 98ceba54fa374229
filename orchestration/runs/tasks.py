"""Background tasks (django-tasks): the same code on one worker or many."""

from __future__ import annotations

from django_tasks import task

from orchestration.runs import engine


@task()
def execute_run(run_id: int) -> str:
    return engine.execute(run_id)
