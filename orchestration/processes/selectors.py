"""Reads for processes and steps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db.models import Count, Q, QuerySet

from orchestration.models import Process, Step, StepRun
from orchestration.processes import step_kinds


def process_list(*, search: str = "") -> QuerySet[Process]:
    qs = (
        Process.objects.filter(version_of__isnull=True)
        .annotate(
            step_count=Count("steps", distinct=True),
            incomplete_count=Count("steps", filter=~Q(steps__problems=[]), distinct=True),
        )
        .order_by("name", "pk")
    )
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(description__icontains=search))
    return qs


def process_steps(*, process: Process) -> list[Step]:
    """List the process's steps in order, with what every kind reads loaded."""
    related = step_kinds.select_related_all()
    return list(process.steps.select_related(*related).order_by("position", "pk"))


def steps_with_events_before(steps: Iterable[Step]) -> Iterator[tuple[Step, frozenset[str]]]:
    """Pair each step, in order, with the names of the events the steps before it can emit
    (their outcome routes included)."""
    before: set[str] = set()
    for step in steps:
        yield step, frozenset(before)
        before |= step_kinds.get(step.kind).event_names(step)


def step_context(*, step: Step) -> dict:
    """Return what a step runs on in the editor: the test input and the earlier steps' events.

    Each earlier event's payload is its pinned sample when it has one, else the payload
    of its latest successful test run. `samples` names the events whose payload is a sample;
    `emitted` names every event an earlier step emits, captured or not; `steps` is every
    step of the process, in order, for the editor page to reuse.
    """
    process = step.process
    steps = process_steps(process=process)
    earlier = []
    emitted: frozenset[str] = frozenset()
    for other, before in steps_with_events_before(steps):
        if other.pk == step.pk:
            emitted = before
            break
        earlier.append(other)
    latest = latest_runs(step_ids=[s.pk for s in earlier], succeeded=True)
    by_name = {e.name: e for e in process.events.all()}
    events: dict[str, dict] = {}
    samples: list[str] = []
    for other in earlier:
        kind = step_kinds.get(other.kind)
        for name in sorted(kind.event_names(other)):
            event = by_name.get(name)
            if event is not None and event.sample_payload is not None:
                events[name] = event.sample_payload
                samples.append(name)
        run = latest.get(other.pk)
        if run is not None:
            # The event its last Test emitted: an outcome route's, or the step's own.
            name = run.event.name if run.event else kind.event_name(other)
            if name and name not in events:
                events[name] = run.captured
    return {
        "trigger": process.test_input or {},
        "events": events,
        "samples": samples,
        "emitted": set(emitted),
        "steps": steps,
    }


def latest_runs(*, step_ids: list[int], succeeded: bool = False) -> dict[int, StepRun]:
    """Each step's latest run (or latest successful run), in one query."""
    from django.db.models import OuterRef, Subquery

    latest = StepRun.objects.filter(step=OuterRef("step"))
    if succeeded:
        latest = latest.filter(outcome=StepRun.Outcome.SUCCEEDED)
    runs = StepRun.objects.select_related("event").filter(
        step_id__in=step_ids,
        pk=Subquery(latest.order_by("-started_at", "-pk").values("pk")[:1]),
    )
    return {run.step_id: run for run in runs}


def step_latest_run(*, step: Step) -> StepRun | None:
    return step.runs.order_by("-started_at", "-pk").first()
