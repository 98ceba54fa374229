"""Process pages: the list and the editor. Every signed-in user may look; designers edit."""

from __future__ import annotations

import hashlib
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orchestration.models import CompletionEvent, Process, Step, StepRun
from orchestration.processes import refused_samples, routes, selectors, services, step_kinds
from orchestration.processes.forms import (
    ProcessForm,
    SamplePayloadForm,
    StepNameForm,
    StepStartForm,
)
from orchestration.processes.timeline import step_timeline
from orchestration.validators import is_ascii_digits
from orchestration.web.roles import DESIGNER, designer_required

STARTS_ON_UNAVAILABLE = "Choose the process start or an event an earlier step can emit."


@require_GET
def home(request):
    return redirect("process-list")


@require_GET
def process_list(request):
    search = request.GET.get("q", "").strip()  # drafts only: versions live under their draft
    page = Paginator(selectors.process_list(search=search), 50).get_page(request.GET.get("page"))
    return render(
        request, "orchestration/process_list.html", {"page": page, "processes": page, "q": search}
    )


@require_http_methods(["GET", "POST"])
@designer_required
def process_create(request):
    form = ProcessForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        process = services.process_create(
            actor=request.user,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
        )
        process.test_input = form.cleaned_data["test_input"]
        process.save(update_fields=["test_input"])
        messages.success(request, f"Process “{process.name}” created. Add its first step.")
        return redirect(process)
    return render(request, "orchestration/process_create.html", {"form": form})


@require_POST
@designer_required
def process_duplicate(request, pk: int):
    copy = services.process_duplicate(process=get_object_or_404(Process, pk=pk), actor=request.user)
    messages.success(request, f"Created “{copy.name}”.")
    return redirect(copy)


@require_http_methods(["GET", "POST"])
@designer_required
def process_delete(request, pk: int):
    process = get_object_or_404(Process, pk=pk)
    check_editable(request, process)
    if request.method == "POST":
        process.delete()
        messages.success(request, f"Process “{process.name}” deleted.")
        return redirect("process-list")
    return render(request, "orchestration/process_delete.html", {"process": process})


def editor_context(process: Process, *, user, steps=None, **extra) -> dict:
    """What every editor page shows: the process, its steps in order and their last test.

    `steps`, when the caller has loaded them (`selectors.process_steps`), are used as they are.
    """
    current = extra.get("step")
    if steps is None:
        steps = process.steps.order_by("position", "pk")
        if current is not None:  # Starts on offers what earlier steps emit: their kinds' events
            steps = steps.select_related(*step_kinds.select_related_all())
        steps = list(steps)
    latest = selectors.latest_runs(step_ids=[s.pk for s in steps])
    # Every step's links in the sidebar: reverse() once, not four times per step.
    base = reverse("step-editor", args=[process.pk, 0]).removesuffix("0/")
    for step in steps:
        step.last_run = latest.get(step.pk)
        step.editor_url = f"{base}{step.pk}/"
    context = {"process": process, "steps": steps, "step_form": StepNameForm()}
    if current is not None and current.pk in (ids := [s.pk for s in steps]):
        earlier = routes.may_emit(steps)[ids.index(current.pk)]
        context["start_form"] = StepStartForm(
            initial={"starts_on": current.starts_on}, earlier_events=earlier
        )
    editable = can_edit(user, process)
    reason = None if editable else read_only_reason(user, process)
    return {**context, "can_edit": editable, "read_only_reason": reason, **extra}


def _editable_step(request, pk: int, step_pk: int) -> Step:
    step = get_object_or_404(Step.objects.select_related("process"), pk=step_pk, process_id=pk)
    check_editable(request, step.process)
    return step


FROZEN_REFUSED = (
    "This is deployed version {number} of “{name}”, which stays as it was deployed. "
    "Change the draft, then deploy it again."
)


def can_edit(user, process: Process) -> bool:
    """Whether user may change process: designers only, and never a deployed version."""
    return user.has_perm(DESIGNER.permission) and not process.is_frozen


def read_only_reason(user, process: Process) -> str:
    """Say why process is read-only for user, in the words a refused change would use."""
    if process.is_frozen:
        return FROZEN_REFUSED.format(number=process.version_number, name=process.name)
    return DESIGNER.refused


def check_editable(request, process: Process) -> None:
    """Refuse changes from non-designers and to deployed versions, saying why."""
    if not request.user.has_perm(DESIGNER.permission):
        raise PermissionDenied(DESIGNER.refused)
    if process.is_frozen:
        raise PermissionDenied(
            FROZEN_REFUSED.format(number=process.version_number, name=process.name)
        )


@require_http_methods(["GET", "POST"])
def process_editor(request, pk: int):
    process = get_object_or_404(Process, pk=pk)
    form = ProcessForm(request.POST or None, instance=process)
    if request.method == "POST":
        check_editable(request, process)
        if form.is_valid():
            form.save()
            messages.success(request, "Process saved.")
            return redirect(process)
    tested = request.session.get(_test_key(process))
    test_timeline = None
    if tested:
        runs = StepRun.objects.filter(pk__in=tested, step__process=process).select_related("event")
        test_timeline = step_timeline(process.steps.order_by("position", "pk"), runs)
    return render(
        request,
        "orchestration/process_editor.html",
        editor_context(process, user=request.user, form=form, test_timeline=test_timeline),
    )


def _test_key(process: Process) -> str:
    return f"process-test:{process.pk}"


@require_POST
@designer_required
def process_test(request, pk: int):
    process = get_object_or_404(Process, pk=pk)
    check_editable(request, process)
    try:
        effects = services.process_side_effects(process=process)
    except services.ProcessTestRefused as refused:
        messages.error(request, str(refused))
        return redirect(process)
    # A yes is to the list shown: a step changed meanwhile (now a DELETE) asks again.
    digest = hashlib.sha256(json.dumps(effects).encode()).hexdigest()[:16]
    if effects and request.POST.get("confirmed") != digest:
        # As a step's Test does: requests that may change data elsewhere are sent on a yes.
        context = {"process": process, "effects": effects, "digest": digest}
        context["changed"] = bool(request.POST.get("confirmed"))
        return render(request, "orchestration/process_test_confirm.html", context)
    try:
        # Each step sent spends one of the user's Test runs (the server sends them).
        runs = services.process_test_run(process=process, actor=request.user, spend_test_runs=True)
    except services.ProcessTestRefused as refused:  # steps added since the question
        messages.error(request, str(refused))
        return redirect(process)
    # The page after the redirect shows each step's result; a reload sends nothing again.
    request.session[_test_key(process)] = [run.pk for run in runs]
    if not runs:
        messages.warning(request, "The process has no steps to test.")
    elif runs[-1].outcome == StepRun.Outcome.FAILED:
        messages.error(
            request,
            f"Test stopped at step “{runs[-1].step.name}”: {runs[-1].error_message}",
        )
    else:
        ran = [run for run in runs if run.outcome == StepRun.Outcome.SUCCEEDED]
        skipped = [run.step.name for run in runs if run.outcome == StepRun.Outcome.SKIPPED]
        count = "The step" if len(ran) == 1 else f"{len(ran)} steps"
        message = f"{count} succeeded."
        if skipped:
            message += f" Skipped, as no route led to them: {', '.join(skipped)}."
        messages.success(request, message)
    return redirect(process)


@require_POST
@designer_required
def event_sample(request, pk: int, event_pk: int):
    """Pin, write or clear the sample payload of a completion event."""
    event = get_object_or_404(
        CompletionEvent.objects.select_related("process"), pk=event_pk, process_id=pk
    )
    check_editable(request, event.process)
    back = request.POST.get("step")
    step = None
    if back and is_ascii_digits(back):
        step = event.process.steps.filter(pk=back).first()
    action = request.POST.get("action")
    if action == "pin":
        if services.event_sample_pin(event=event):
            messages.success(request, f"Pinned the last payload of “{event.name}” as its sample.")
        else:
            messages.error(request, f"“{event.name}” has not been emitted by a test run yet.")
    elif action == "clear":
        services.event_sample_set(event=event, payload=None)
        messages.success(request, f"Cleared the sample of “{event.name}”.")
    else:
        form = SamplePayloadForm(request.POST)
        if form.is_valid():
            services.event_sample_set(event=event, payload=form.cleaned_data["payload"])
            messages.success(request, f"Saved the sample of “{event.name}”.")
        else:
            error = f"Sample not saved: {' '.join(form.errors['payload'])}"
            if step is not None:  # its editor shows the text again, with the error beside it
                refused_samples.refused_sample_keep(
                    request, event.pk, text=request.POST.get("payload", ""), error=error
                )
            else:
                messages.error(request, error)
    if step is not None:
        return redirect("step-editor", pk=pk, step_pk=step.pk)
    return redirect(event.process)


@require_http_methods(["GET", "POST"])
def step_editor(request, pk: int, step_pk: int):
    step = get_object_or_404(Step.objects.select_related("process"), pk=step_pk, process_id=pk)
    return step_kinds.get(step.kind).editor(request, step)


@require_POST
@designer_required
def step_create(request, pk: int):
    process = get_object_or_404(Process, pk=pk)
    check_editable(request, process)
    form = StepNameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the step a name.")
        return redirect(process)
    step = services.step_create(process=process, actor=request.user, name=form.cleaned_data["name"])
    return redirect("step-editor", pk=process.pk, step_pk=step.pk)


@require_POST
@designer_required
def step_rename(request, pk: int, step_pk: int):
    step = _editable_step(request, pk, step_pk)
    form = StepNameForm(request.POST)
    if form.is_valid():
        services.step_rename(step=step, actor=request.user, name=form.cleaned_data["name"])
    else:
        messages.error(request, "A step needs a name.")
    return redirect("step-editor", pk=pk, step_pk=step.pk)


@require_POST
@designer_required
def step_start(request, pk: int, step_pk: int):
    step = _editable_step(request, pk, step_pk)
    steps = selectors.process_steps(process=step.process)
    earlier = routes.may_emit(steps)[[s.pk for s in steps].index(step.pk)]
    form = StepStartForm(request.POST, earlier_events=earlier)
    if form.is_valid():
        services.step_set_start(
            step=step, actor=request.user, starts_on=form.cleaned_data["starts_on"]
        )
        messages.success(request, "Starts on saved.")
    else:
        messages.error(request, STARTS_ON_UNAVAILABLE)
    return redirect("step-editor", pk=pk, step_pk=step.pk)


@require_POST
@designer_required
def step_move(request, pk: int, step_pk: int):
    step = _editable_step(request, pk, step_pk)
    services.step_move(step=step, offset=-1 if request.POST.get("direction") == "up" else 1)
    return redirect("step-editor", pk=pk, step_pk=step.pk)


@require_POST
@designer_required
def step_delete(request, pk: int, step_pk: int):
    step = _editable_step(request, pk, step_pk)
    services.step_delete(step=step)
    messages.success(request, f"Step “{step.name}” deleted.")
    return redirect("process-editor", pk=pk)
