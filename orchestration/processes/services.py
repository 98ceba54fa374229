"""Writes for processes and steps."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify

from orchestration.models import CompletionEvent, Process, Step, StepRun
from orchestration.processes import routes, step_kinds
from orchestration.processes.selectors import process_steps, step_context
from orchestration.processes.step_kinds import StepResult
from orchestration.web.throttle import Throttled, check_test_run_allowed

PROCESS_TEST_TOO_MANY_STEPS = (
    "This process has {count} steps and a Test runs at most {limit}; "
    "test its steps from their editors instead."
)
STEP_NOT_SENT = "Not sent: {reason}"


class ProcessTestRefused(ValueError):
    """A Test process that is refused before anything is sent; the message is safe to show."""


def with_suffix(name: str, suffix: str) -> str:
    """Append suffix, shortening name so the result still fits Process.name."""
    limit = Process._meta.get_field("name").max_length
    return name[: limit - len(suffix)] + suffix


def process_create(*, actor, name: str, description: str = "") -> Process:
    process = Process(name=name, description=description, created_by=actor)
    process.full_clean()
    process.save()
    return process


@transaction.atomic
def process_duplicate(*, process: Process, actor) -> Process:
    """Copy a process with its steps, events and step configuration, as a new draft."""
    copy = Process.objects.create(
        name=with_suffix(process.name, " (copy)"),
        description=process.description,
        test_input=process.test_input,
        created_by=actor,
    )
    process_copy_contents(source=process, target=copy)
    return copy


def process_copy_contents(*, source: Process, target: Process) -> None:
    """Copy a process's completion events and steps, with each step kind's configuration."""
    for event in source.events.all():
        CompletionEvent.objects.create(
            process=target,
            name=event.name,
            description=event.description,
            sample_payload=event.sample_payload,
        )
    for step in source.steps.order_by("position", "pk"):
        new_step = Step.objects.create(
            process=target,
            name=step.name,
            key=step.key,
            position=step.position,
            kind=step.kind,
            max_attempts=step.max_attempts,
            starts_on=step.starts_on,
            problems=step.problems,
        )
        step_kinds.get(step.kind).copy(step, new_step)


def _unique_key(process: Process, name: str, exclude_pk: int | None = None) -> str:
    base = slugify(name)[:90] or "step"
    taken = set(process.steps.exclude(pk=exclude_pk).values_list("key", flat=True))
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key


@transaction.atomic
def step_create(
    *, process: Process, actor, name: str, kind: str = Step.Kind.CLOUD_FUNCTION
) -> Step:
    position = (process.steps.aggregate(m=Max("position"))["m"] or 0) + 1
    step = Step(
        process=process,
        name=name,
        key=_unique_key(process, name),
        position=position,
        kind=kind,
        updated_by=actor,
    )
    step.full_clean()
    step.save()
    step_refresh_problems(process=process)
    return step


def step_rename(*, step: Step, actor, name: str) -> Step:
    step.name = name
    step.key = _unique_key(step.process, name, exclude_pk=step.pk)
    step.updated_by = actor
    step.full_clean()
    step.save(update_fields=["name", "key", "updated_by", "updated_at"])
    return step


@transaction.atomic
def step_set_start(*, step: Step, actor, starts_on: str) -> Step:
    """Set what starts the step; a start no earlier step emits shows as a problem."""
    step.starts_on = starts_on
    step.updated_by = actor
    step.save(update_fields=["starts_on", "updated_by", "updated_at"])
    step_refresh_problems(process=step.process)
    return step


@transaction.atomic
def step_move(*, step: Step, offset: int) -> None:
    """Move a step up (-1) or down (+1), renumbering positions densely."""
    steps = list(step.process.steps.select_for_update().order_by("position", "pk"))
    index = next(i for i, s in enumerate(steps) if s.pk == step.pk)
    target = max(0, min(len(steps) - 1, index + offset))
    steps.insert(target, steps.pop(index))
    for position, s in enumerate(steps, start=1):
        s.position = position
    Step.objects.bulk_update(steps, ["position"])
    step_refresh_problems(process=step.process)


@transaction.atomic
def step_delete(*, step: Step) -> None:
    process = step.process
    step.delete()
    step_refresh_problems(process=process)


def step_refresh_problems(*, process: Process) -> None:
    """Recompute every step's problems: moving or deleting a step changes what is earlier."""
    changed = []
    steps = process_steps(process=process)
    starts = routes.start_events(steps)
    for step, start, earlier in zip(steps, starts, routes.may_emit(steps), strict=True):
        problems = step_kinds.get(step.kind).problems(step, earlier_events=set(earlier))
        if unreachable := routes.unreachable_start(step, start, earlier):
            problems.insert(0, unreachable)
        if problems != step.problems:
            step.problems = problems
            changed.append(step)
    if changed:
        Step.objects.bulk_update(changed, ["problems"])


def step_run_record(
    *,
    step: Step,
    actor,
    result: StepResult,
    is_test: bool,
    run=None,
    attempt: int = 1,
    events: dict[str, CompletionEvent] | None = None,
    retry_delay_s: float | None = None,
    outcome: str | None = None,
) -> StepRun:
    """Store one run of a step and the completion event it emitted (its payload is the capture).

    `events` maps event names to events when the caller has them at hand (the engine).
    """
    event_name = None
    if result.ok:
        event_name = result.event or step_kinds.get(step.kind).event_name(step)
    event = None
    if event_name:
        event = (
            events.get(event_name)
            if events is not None
            else step.process.events.filter(name=event_name).first()
        )
    return StepRun.objects.create(
        step=step,
        started_by=actor,
        is_test=is_test,
        run=run,
        attempt=attempt,
        retry_delay_s=retry_delay_s,
        retry_after_s=result.retry_after if retry_delay_s is not None else None,
        duration_ms=result.duration_ms,
        outcome=outcome or (StepRun.Outcome.SUCCEEDED if result.ok else StepRun.Outcome.FAILED),
        request=result.request,
        captured=result.payload,
        error_stage=result.error_stage,
        error_message=result.error_message,
        event=event,
    )


def step_test_run(*, step: Step, actor) -> StepRun:
    """Run one step now, on the test context of the steps before it, and record it."""
    context = step_context(step=step)
    kind = step_kinds.get(step.kind)
    result = kind.route(step, kind.run(step, context=context), context=context)
    return step_run_record(step=step, actor=actor, result=result, is_test=True)


def process_side_effects(*, process: Process) -> list[tuple[str, str]]:
    """(step name, what it may change) for each step a Test would run that is not a read."""
    effects = [(step.name, step_kinds.get(step.kind).side_effect(step)) for step in _steps(process)]
    return [(name, effect) for name, effect in effects if effect]


def process_test_run(*, process: Process, actor, spend_test_runs: bool = False) -> list[StepRun]:
    """Run every step in order on the test input, each on the captures of the ones before.

    Stops at the first failure; the returned runs say how far it got and why it stopped.
    With `spend_test_runs`, each step spends one of the actor's Test runs before it runs;
    when they run out, the step is recorded as not sent, with the wait, and the test stops.
    """
    context = {"trigger": process.test_input or {}, "events": {}}
    runs = []
    steps = _steps(process)
    for step, start in zip(steps, routes.start_events(steps), strict=True):
        if start is not None and start not in context["events"]:
            runs.append(step_skip_record(step=step, event=start, actor=actor, is_test=True))
            continue
        kind = step_kinds.get(step.kind)
        refused = _spend_test_run(actor) if spend_test_runs else None
        result = refused or kind.route(step, kind.run(step, context=context), context=context)
        runs.append(step_run_record(step=step, actor=actor, result=result, is_test=True))
        if not result.ok:
            break
        if name := result.event or kind.event_name(step):
            context["events"][name] = result.payload
    return runs


def step_skip_record(*, step: Step, event: str, actor=None, is_test: bool, run=None) -> StepRun:
    """Store that a step was not reached: the event it starts on never came."""
    return step_run_record(
        step=step,
        actor=actor,
        result=StepResult(ok=False, error_message=routes.SKIPPED.format(event=event)),
        is_test=is_test,
        run=run,
        outcome=StepRun.Outcome.SKIPPED,
    )


def _spend_test_run(actor) -> StepResult | None:
    """Spend one of the actor's Test runs; return the step's result when none is left."""
    # Spent before the run is known to send: a step that fails first (not configured, a
    # CEL error) costs one run, and ends the test anyway.
    try:
        check_test_run_allowed(actor)
    except Throttled as throttled:
        message = STEP_NOT_SENT.format(reason=throttled.message)
        return StepResult(ok=False, error_stage="throttled", error_message=message)
    return None


def _steps(process: Process) -> list[Step]:
    """Return the steps a Test runs, in order; raise ProcessTestRefused over the step cap."""
    limit = settings.PROCESS_TEST_STEP_LIMIT
    related = step_kinds.select_related_all()
    # One more than the cap is enough to know it is over: a huge process is not loaded.
    steps = list(process.steps.select_related(*related).order_by("position", "pk")[: limit + 1])
    if len(steps) > limit:
        count = process.steps.count()
        raise ProcessTestRefused(PROCESS_TEST_TOO_MANY_STEPS.format(count=count, limit=limit))
    return steps


def event_sample_set(*, event: CompletionEvent, payload: dict | None) -> None:
    """Use a hand-written payload for mapping (None clears it)."""
    event.sample_payload = payload
    event.save(update_fields=["sample_payload"])


def event_sample_pin(*, event: CompletionEvent) -> bool:
    """Pin the payload of the event's latest emission; return False when it was never emitted."""
    run = (
        StepRun.objects.filter(event=event, outcome=StepRun.Outcome.SUCCEEDED)
        .order_by("-started_at", "-pk")
        .first()
    )
    if run is None:
        return False
    event_sample_set(event=event, payload=run.captured)
    return True
