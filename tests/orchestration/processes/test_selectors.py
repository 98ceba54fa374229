from __future__ import annotations

import pytest

from orchestration.models import StepRun
from orchestration.processes.selectors import process_steps, step_context, steps_with_events_before
from orchestration.processes.services import step_refresh_problems
from tests.factories import (
    CloudFunctionFactory,
    EventFactory,
    ProcessFactory,
    StepFactory,
)
from tests.queries import count_queries

pytestmark = pytest.mark.django_db


def _emitting(process, position, event_name):
    step = StepFactory(process=process, position=position)
    CloudFunctionFactory(step=step, completion_event=EventFactory(process=process, name=event_name))
    return step


def test_step_context_holds_the_trigger_and_what_earlier_steps_emit():
    process = ProcessFactory(test_input={"order": 7})
    first = _emitting(process, 1, "charge.created")
    second = _emitting(process, 2, "refund.created")
    plain = StepFactory(process=process, position=3)  # no cloud function: emits nothing
    third = _emitting(process, 4, "mail.sent")
    StepRun.objects.create(step=first, outcome="succeeded", captured={"body": {"id": "ch_1"}})
    StepRun.objects.create(step=second, outcome="failed", captured={"body": {"id": "re_1"}})
    process.events.filter(name="refund.created").update(sample_payload={"body": {"id": "re_s"}})

    context = step_context(step=third)

    assert context["trigger"] == {"order": 7}
    # A failed run is not a capture; the pinned sample stands in for it.
    assert context["events"] == {
        "charge.created": {"body": {"id": "ch_1"}},
        "refund.created": {"body": {"id": "re_s"}},
    }
    assert context["samples"] == ["refund.created"]
    assert context["emitted"] == {"charge.created", "refund.created"}
    assert step_context(step=plain)["emitted"] == {"charge.created", "refund.created"}
    # A step never sees its own event or a later one.
    assert step_context(step=second)["emitted"] == {"charge.created"}
    assert step_context(step=first) == {
        "trigger": {"order": 7},
        "events": {},
        "samples": [],
        "emitted": set(),
        "steps": [first, second, plain, third],  # every step, for the editor page to reuse
    }


def test_the_editor_and_the_problem_check_agree_on_what_is_earlier():
    process = ProcessFactory()
    _emitting(process, 1, "a.done")
    later = StepFactory(process=process, position=2)
    CloudFunctionFactory(step=later, uri='"/x/" + events["a.done"].body.id + events["b.done"].x')
    _emitting(process, 3, "b.done")
    step_refresh_problems(process=process)
    later.refresh_from_db()
    # b.done is emitted by a later step, so it is unknown here, as in the editor's context.
    assert any("b.done" in problem for problem in later.problems)
    assert not any("a.done" in problem for problem in later.problems)
    assert step_context(step=later)["emitted"] == {"a.done"}
    pairs = {
        s.pk: set(before) for s, before in steps_with_events_before(process_steps(process=process))
    }
    assert pairs[later.pk] == step_context(step=later)["emitted"]


def test_step_context_costs_the_same_few_queries_however_many_steps():
    process = ProcessFactory()
    steps = [_emitting(process, n, f"e{n}.done") for n in range(1, 4)]
    with count_queries() as few:
        step_context(step=steps[-1])
    steps += [_emitting(process, n, f"e{n}.done") for n in range(4, 12)]
    with count_queries() as many:
        step_context(step=steps[-1])
    assert many.count == few.count
