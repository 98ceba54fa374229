"""Writes for cloud functions (HackSoft style: <entity>_<action>, keyword-only)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from cloudfunctions.models import CloudFunction
from orchestration.models import CompletionEvent, Step
from orchestration.processes.services import step_refresh_problems


class EditConflict(Exception):
    """Someone else saved the step since this form was loaded."""

    def __init__(self, step: Step):
        self.step = step
        who = step.updated_by.get_username() if step.updated_by else "someone"
        when = step.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(
            f"This step was changed by {who} at {when} after you opened it. "
            "Your input is kept below; copy what you need, then reload to see their version."
        )


@transaction.atomic
def cloud_function_save(
    *,
    step: Step,
    actor,
    expected_revision: int,
    fields: dict,
    query_params: list[dict],
    headers: list[dict],
    new_event_name: str | None,
    event: CompletionEvent | None,
    max_attempts: int | None = None,
    draft: dict[str, str] | None = None,
    outcomes: list[dict] | None = None,
) -> CloudFunction:
    """Save everything typed (valid or not) unless someone saved the step in between.

    `draft` holds the typed text of refused fields; a save without refusals clears it.
    """
    updated = Step.objects.filter(pk=step.pk, revision=expected_revision).update(
        revision=F("revision") + 1,
        updated_by=actor,
        updated_at=timezone.now(),
        max_attempts=max_attempts or F("max_attempts"),
    )
    if not updated:
        raise EditConflict(Step.objects.select_related("updated_by").get(pk=step.pk))
    if new_event_name:
        event = CompletionEvent.objects.create(process=step.process, name=new_event_name)
    cf, _ = CloudFunction.objects.get_or_create(step=step)
    for name, value in fields.items():
        setattr(cf, name, value)
    cf.query_params = query_params
    cf.headers = headers
    cf.completion_event = event
    cf.draft = draft or {}
    if outcomes is not None:
        # The events an Outcomes row names exist, so later steps can start on them.
        for name in {row["event"] for row in outcomes if row["event"]}:
            CompletionEvent.objects.get_or_create(process=step.process, name=name)
        cf.outcomes = outcomes
    cf.save()
    step_refresh_problems(process=step.process)
    return cf
