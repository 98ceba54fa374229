"""Processes for the run engine's tests: cloud-function steps against a loopback API."""

from __future__ import annotations

from orchestration.models import Run
from orchestration.processes import deployments
from orchestration.runs import engine
from orchestration.runs import services as run_services
from tests.factories import (
    CloudFunctionFactory,
    EventFactory,
    ProcessFactory,
    StepFactory,
)


def draft_process(connection, *uris, method="GET", max_attempts=3):
    """A draft with one cloud-function step per URI; step N emits "stepN.done"."""
    process = ProcessFactory()
    for position, uri in enumerate(uris, start=1):
        CloudFunctionFactory(
            step=StepFactory(process=process, position=position, max_attempts=max_attempts),
            connection=connection,
            method=method,
            uri=uri,
            body="{}" if method != "GET" else "",
            completion_event=EventFactory(process=process, name=f"step{position}.done"),
        )
    return process


def deploy(process):
    """Deploy the draft and return it, its live version set."""
    deployments.process_deploy(process=process, actor=None)
    process.refresh_from_db()
    return process


def deployed_process(connection, *uris, **kwargs):
    return deploy(draft_process(connection, *uris, **kwargs))


def work(run_id: int) -> str:
    """Execute a run here as workers would, taking each scheduled retry at once (waiting
    for it is the task queue's business); return the final status."""
    while True:
        outcome = engine.execute(run_id)
        if outcome.retry_at is None:
            return outcome.status


def run_to_end(process, data=None) -> Run:
    """Start a run and execute it here, as a worker would."""
    run = run_services.run_start(process=process, trigger=Run.Trigger.UI, input=data or {})
    work(run.pk)
    run.refresh_from_db()
    return run
