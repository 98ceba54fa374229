"""The cloud-function step kind, as the orchestration engine and editor see it."""

from __future__ import annotations

import copy
from typing import Any

from cloudfunctions.models import cloud_function_of
from cloudfunctions.step import outcomes
from orchestration.processes.step_kinds import StepResult

NOT_CONFIGURED = "Configure the cloud function."


class CloudFunctionKind:
    select_related = ("cloud_function__completion_event", "cloud_function__connection")
    # A connection is shared, and editable after deploy: never cached with a version.
    version_related = ("cloud_function__completion_event",)

    def event_name(self, step) -> str | None:
        cf = cloud_function_of(step)
        return cf.completion_event.name if cf and cf.completion_event_id else None

    def event_names(self, step) -> set[str]:
        cf = cloud_function_of(step)
        names = {row.event for row in outcomes.rows_of(cf)} if cf else set()
        name = self.event_name(step)
        return {n for n in (*names, name) if n}

    def problems(self, step, *, earlier_events: set[str]) -> list[str]:
        from cloudfunctions.step.checks import iter_problems

        cf = cloud_function_of(step)
        if cf is None:
            return [NOT_CONFIGURED]
        return [str(p) for p in iter_problems(cf, known_events=earlier_events)]

    def side_effect(self, step) -> str | None:
        cf = cloud_function_of(step)
        if cf is None or cf.method == "GET":
            return None
        host = cf.connection.host if cf.connection_id else ""
        return f"{cf.method} to {host or 'its connection'}"

    def run(self, step, *, context: dict[str, Any], attempt_key: str | None = None) -> StepResult:
        from cloudfunctions.step.execution import cloud_function_execute

        cf = cloud_function_of(step)
        if cf is None:  # a step added and not configured yet: Test process reaches it too
            return StepResult(ok=False, error_stage="config", error_message=NOT_CONFIGURED)
        return cloud_function_execute(cloud_function=cf, context=context, attempt_key=attempt_key)

    def route(self, step, result: StepResult, *, context: dict[str, Any]) -> StepResult:
        cf = cloud_function_of(step)
        if cf is None:
            return result
        routed = outcomes.route(result, outcomes.rows_of(cf), success_event=self.event_name(step))
        if routed.ok and cf.result.strip():
            return outcomes.shaped(routed, cf.result, context=context)
        return routed

    def bind(self, steps: list) -> None:
        from cloudfunctions.models import Connection

        functions = {}
        for step in steps:
            if step.kind == step.Kind.CLOUD_FUNCTION and (cf := cloud_function_of(step)):
                # The cached cloud function is shared; this run gets its own copy.
                functions[step.pk] = step.cloud_function = copy.copy(cf)
        connections = Connection.objects.in_bulk({cf.connection_id for cf in functions.values()})
        for cf in functions.values():
            if cf.connection_id is not None:
                cf.connection = connections.get(cf.connection_id)

    def copy(self, source, target) -> None:
        cf = cloud_function_of(source)
        if cf is None:
            return
        event = None
        if cf.completion_event_id:
            event = target.process.events.filter(name=cf.completion_event.name).first()
        cf.pk = None
        cf.id = None
        cf.step = target
        cf.completion_event = event
        cf._state.adding = True
        cf.save()

    def editor(self, request, step):
        from cloudfunctions.step.views import step_editor

        return step_editor(request, step)
