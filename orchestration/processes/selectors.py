"""Reads for processes and steps."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from orchestration.models import Process, Step, StepRun


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


def test_context(*, process: Process, before_step: Step | None = None) -> dict:
    """The context a test of a step runs on: the test input and the earlier steps' events.

    Each earlier event's payload is its pinned sample when it has one, else the payload
    of its latest successful test run. `samples` names the events whose payload is a sample;
    `emitted` names every event an earlier step emits, captured or not.
    """
    from orchestration.processes import step_kinds

    events: dict[str, dict] = {}
    samples: list[str] = []
    emitted: set[str] = set()
    steps = process.steps.order_by("position", "pk")
    related = step_kinds.select_related_all()
    earlier = []
    for step in steps.select_related(*related):
        if before_step is not None and step.pk == before_step.pk:
            break
        earlier.append(step)
    latest = {
        step_id: run.captured
        for step_id, run in latest_runs(step_ids=[s.pk for s in earlier], succeeded=True).items()
    }
    by_name = {e.name: e for e in process.events.all()}
    for step in earlier:
        name = step_kinds.get(step.kind).event_name(step)
        if not name:
            continue
        emitted.add(name)
        event = by_name.get(name)
        if event is not None and event.sample_payload is not None:
            events[name] = event.sample_payload
            samples.append(name)
        elif step.pk in latest:
            events[name] = latest[step.pk]
    return {
        "trigger": process.test_input or {},
        "events": events,
        "samples": samples,
        "emitted": emitted,
    }


def latest_runs(*, step_ids: list[int], succeeded: bool = False) -> dict[int, StepRun]:
    """Each step's latest run (or latest successful run), in one query."""
    from django.db.models import OuterRef, Subquery

    latest = StepRun.objects.filter(step=OuterRef("step"))
    if succeeded:
        latest = latest.filter(outcome=StepRun.Outcome.SUCCEEDED)
    runs = StepRun.objects.filter(
        step_id__in=step_ids,
        pk=Subquery(latest.order_by("-started_at", "-pk").values("pk")[:1]),
    )
    return {run.step_id: run for run in runs}


def step_latest_run(*, step: Step) -> StepRun | None:
    return step.runs.order_by("-started_at", "-pk").first()
