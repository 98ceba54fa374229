"""The Cloud function tab of the step editor, and its live field checks."""

from __future__ import annotations

import json

from django.contrib import messages
from django.db import IntegrityError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from cloudfunctions import cel
from cloudfunctions.cel import paths
from cloudfunctions.connections.auth import AuthError
from cloudfunctions.models import CloudFunction, Connection, cloud_function_of
from cloudfunctions.step import checks, services
from cloudfunctions.step.curl import to_curl
from cloudfunctions.step.curl_import import CurlImportError, curl_import
from cloudfunctions.step.forms import (
    NEW_EVENT,
    CloudFunctionForm,
    row_formsets,
    row_management_data,
    rows_from_formset,
)
from cloudfunctions.step.operations import amazon_connect_operations, operation_fill
from orchestration.models import Step
from orchestration.processes import services as orchestration_services
from orchestration.processes import step_kinds
from orchestration.processes.refused_samples import refused_sample_pop
from orchestration.processes.selectors import step_context, step_latest_run
from orchestration.processes.views import check_editable, editor_context
from orchestration.validators import is_ascii_digits
from orchestration.web.roles import designer_required
from orchestration.web.throttle import (
    Throttled,
    check_field_check_allowed,
    check_test_run_allowed,
)

TEMPLATE = "cloudfunctions/step_editor.html"
EVENT_TAKEN = (
    "That completion event was just taken by another step; nothing was saved. Pick another."
)
NO_CAPTURE_YET = "no captured value yet; run Test on the earlier steps to see one"


def _cloud_function(step: Step) -> CloudFunction:
    return cloud_function_of(step) or CloudFunction(step=step)


def step_editor(request, step: Step):
    cf = _cloud_function(step)
    configure = bool(cf.pk) or "configure" in request.GET or request.method == "POST"
    if request.method == "POST":
        check_editable(request, step.process)
        if request.POST.get("_action") in FILLERS:
            return _fill(request, step, cf)
        if request.POST.get("_action") in ADD_ROW:
            return _add_row(request, step, cf, ADD_ROW[request.POST["_action"]])
        return _save(request, step, cf)
    form = CloudFunctionForm(instance=cf, step=step)
    query, headers = row_formsets(cloud_function=cf)
    return _render(request, step, form, query, headers, configure=configure)


def _fill_from_operation(request, cf: CloudFunction) -> tuple[dict, list[str]]:
    try:
        return operation_fill(request.POST.get("operation", "")), []
    except ValueError as error:
        return {}, [str(error)]


def _fill_from_curl(request, cf: CloudFunction) -> tuple[dict, list[str]]:
    connection = _chosen_connection(request, cf)
    try:
        base_url = connection.endpoint if connection else None
    except AuthError as error:
        return {}, [error.message]
    try:
        imported = curl_import(request.POST.get("curl", ""), base_url=base_url)
    except CurlImportError as error:
        return {}, [str(error)]
    fill = {
        "method": imported.method,
        "uri": imported.uri,
        "query": imported.query,
        "headers": imported.headers,
        "body": imported.body,
    }
    return fill, [*imported.credentials, *imported.warnings]


FILLERS = {"fill_operation": _fill_from_operation, "import_curl": _fill_from_curl}


ADD_ROW = {"add_row_query": "query", "add_row_headers": "headers"}


def _add_row(request, step: Step, cf: CloudFunction, prefix: str):
    """ "Add query parameter / header" without JavaScript: the form as typed, one row more,
    nothing saved."""
    data = request.POST.copy()
    total = data.get(f"{prefix}-TOTAL_FORMS", "")
    if is_ascii_digits(total):
        data[f"{prefix}-TOTAL_FORMS"] = str(int(total) + 1)
    return _redraw(request, step, cf, data)


def _chosen_connection(request, cf: CloudFunction):
    pk = request.POST.get("connection", "")
    if is_ascii_digits(pk):
        return (
            Connection.objects.defer(*Connection.SECRET_FIELDS, "oauth_token").filter(pk=pk).first()
        )
    return cf.connection


def _fill(request, step: Step, cf: CloudFunction):
    """Fill the form from a helper (operation picker, Import cURL) without saving it."""
    fill, notes = FILLERS[request.POST["_action"]](request, cf)
    data = request.POST.copy()
    if fill:
        data["method"] = fill["method"]
        data["uri"] = fill["uri"]
        data["body"] = fill["body"]
        data["body_mode"] = CloudFunction.BodyMode.JSON
        for prefix in ("query", "headers"):
            rows = fill[prefix]
            for key in [k for k in data if k.startswith(f"{prefix}-")]:
                del data[key]
            data.update(row_management_data(prefix, rows))
    return _redraw(request, step, cf, data, fill_notes=notes, fill_ok=bool(fill))


def _redraw(request, step: Step, cf: CloudFunction, data, **extra):
    """The editor for these form data, saving nothing (the helpers, Add row)."""
    form = CloudFunctionForm(data, instance=cf, step=step)
    query, headers = row_formsets(data, cloud_function=cf)
    return _render(request, step, form, query, headers, extra={**extra, **_last_run(step)})


def _save(request, step: Step, cf: CloudFunction):
    form = CloudFunctionForm(request.POST, instance=cf, step=step)
    query, headers = row_formsets(request.POST, cloud_function=cf)
    form.is_valid()
    if not (query.is_valid() and headers.is_valid()) or "revision" in form.errors:
        messages.error(request, "The form was incomplete; nothing was saved. Please try again.")
        return _render(request, step, form, query, headers, status=400)
    # Keep every field that cleaned; a field with an error keeps its stored value.
    fields = {
        name: form.cleaned_data[name]
        for name in CloudFunctionForm.Meta.fields
        if name in form.cleaned_data
    }
    choice = form.cleaned_data.get("completion_event_choice")
    new_event = None
    event = cf.completion_event if cf.pk else None
    if "completion_event_choice" in form.errors:
        pass  # an event taken meanwhile: keep the stored one
    elif choice == NEW_EVENT and "new_event_name" not in form.errors:
        new_event = form.cleaned_data["new_event_name"].strip()
    elif choice != NEW_EVENT:
        event = step.process.events.filter(pk=choice).first() if choice else None
    testing = request.POST.get("_action") in ("test", "test_confirmed")
    try:
        services.cloud_function_save(
            step=step,
            actor=request.user,
            expected_revision=form.cleaned_data["revision"],
            fields=fields,
            query_params=rows_from_formset(query),
            headers=rows_from_formset(headers),
            new_event_name=new_event,
            event=event,
            max_attempts=form.cleaned_data.get("max_attempts") or step.max_attempts,
        )
    except services.EditConflict as conflict:
        if testing and request.htmx:
            return _test_refused(request, step, str(conflict))
        return _render(request, step, form, query, headers, conflict=str(conflict), status=409)
    except IntegrityError:
        # Someone took the event (its name, or as emitter) between the check and the save.
        if testing and request.htmx:
            return _test_refused(request, step, EVENT_TAKEN)
        form.add_error(None, EVENT_TAKEN)
        return _render(request, step, form, query, headers, status=409)
    if form.errors:
        step.refresh_from_db()
        form.data = form.data.copy()
        form.data["revision"] = step.revision
        if not (testing and request.htmx):  # htmx swaps the result only: the form is on screen
            messages.warning(request, "Saved, but some fields need attention (see below).")
    if testing:
        # Without htmx the page is drawn anew: a form with errors keeps them, and the text.
        typed = (form, query, headers) if form.errors else None
        return _test(
            request, step, confirmed=request.POST["_action"] == "test_confirmed", typed=typed
        )
    if form.errors:
        return _render(request, step, form, query, headers, status=200)
    messages.success(request, "Cloud function saved.")
    return redirect("step-editor", pk=step.process_id, step_pk=step.pk)


def _test_refused(request, step: Step, message: str):
    """Answer an htmx Test whose save was refused: in the result area, as htmx swaps no 4xx.
    The form on screen keeps what was typed, and its revision, so Save stays refused too."""
    context = {"step": step, "test_refused": message}
    return render(request, TEMPLATE + "#test-result", context)


def _test(request, step: Step, *, confirmed: bool, typed=None):
    """Run the just-saved step for real; a request with side effects needs a confirmation."""
    cf = CloudFunction.objects.select_related("connection").get(step=step)
    step.refresh_from_db(fields=["problems", "revision"])
    context = {"step": step, "process": step.process, "cf": cf, "can_edit": True}
    if typed is not None:
        # Refused fields kept their saved values, and those are what the test sends.
        context["kept_saved"] = [
            typed[0][name].label for name in typed[0].errors if name in typed[0].fields
        ]
    status = 200
    if cf.method != "GET" and not confirmed:
        context["needs_confirmation"] = True
        context["target_host"] = cf.connection.host if cf.connection_id else ""
    else:
        try:
            # The server sends these requests: a per-user limit keeps it from being a cannon.
            check_test_run_allowed(request.user)
        except Throttled as throttled:
            context["throttled"] = throttled.message
            # htmx swaps no 4xx answer: its result area would keep silent.
            status = 200 if request.htmx else 429
        else:
            run = orchestration_services.step_test_run(step=step, actor=request.user)
            context.update(_run_context(step, run))
    if request.htmx:
        # The save bumped the revision: the form's hidden copy follows out of band.
        return render(request, TEMPLATE + "#test-result", {**context, "oob": True}, status=status)
    if typed is not None:
        form, query, headers = typed
    else:
        form = CloudFunctionForm(instance=cf, step=step)
        query, headers = row_formsets(cloud_function=cf)
    return _render(request, step, form, query, headers, extra=context, status=status)


def _last_run(step: Step) -> dict:
    return _run_context(step, step_latest_run(step=step))


def _run_context(step: Step, run) -> dict:
    """The test result as the page shows it: the run, its curl line and the captured tree."""
    if run is None:
        return {}
    name = step_kinds.get(step.kind).event_name(step)
    root = paths.event_root(name) if name else "response"
    tree = paths.tree(root, run.captured) if run.captured is not None else []
    return {"run": run, "curl": to_curl(run.request), "tree": tree}


def _render(
    request, step, form, query, headers, *, configure=True, conflict=None, status=200, extra=None
):
    step.refresh_from_db(fields=["problems", "revision"])
    test = step_context(step=step)
    context = editor_context(
        step.process,
        user=request.user,
        step=step,
        form=form,
        query_formset=query,
        headers_formset=headers,
        configure=configure,
        conflict=conflict,
        known_events=sorted(test["emitted"]),
        paths=paths.leaves(test["events"], set(test["samples"])),
    )
    context.update(extra if extra is not None else _last_run(step))
    if form.instance.completion_event_id:
        context["refused_sample"] = refused_sample_pop(request, form.instance.completion_event_id)
    connection = form.instance.connection if form.instance.connection_id else None
    if connection is not None and connection.is_amazon_connect:
        context["operations"] = amazon_connect_operations()
    return render(request, TEMPLATE, context, status=status)


def _field_label(name: str) -> str:
    prefix, _, rest = name.partition("-")
    if prefix in ("query", "headers") and rest:
        index, _, part = rest.partition("-")
        label = "Query parameter" if prefix == "query" else "Header"
        if is_ascii_digits(index):
            return f"{label} {int(index) + 1} {part}"
    return {"uri": "URI", "body": "Body"}.get(name, name)


@require_POST
@designer_required
def field_check(request, pk: int, step_pk: int):
    """Check one field as the designer types (htmx); answers a small status fragment."""
    step = get_object_or_404(Step.objects.select_related("process"), pk=step_pk, process_id=pk)
    name = request.POST.get("_field", "")
    try:
        check_field_check_allowed(request.user)
    except Throttled as throttled:
        context = {"field_name": name, "problems": [{"message": throttled.message}]}
        # htmx swaps no 4xx answer: the field's status would keep its last word.
        status = 200 if request.htmx else 429
        return render(request, TEMPLATE + "#field-status", context, status=status)
    source = request.POST.get(name, "")
    known = step_context(step=step)["emitted"]
    if name == "body":
        if request.POST.get("body_mode") == CloudFunction.BodyMode.CEL:
            problems = checks.check_cel(source, field="Body", known_events=known) if source else []
        else:
            problems = checks.check_json_body(source)
    elif name == "uri":
        problems = checks.check_uri(source, known_events=known)
    else:
        problems = checks.check_cel(source, field=_field_label(name), known_events=known)
    context = {"field_name": name, "problems": problems}
    if not problems and source.strip() and name != "body":
        context.update(_preview(source, name, step))
    return render(request, TEMPLATE + "#field-status", context)


def _preview(source: str, name: str, step: Step) -> dict:
    """Evaluate a field on the last captured context, so the designer sees what it gives."""
    if cel.constant_value(source) is not cel.NOT_CONSTANT:
        return {}
    context = step_context(step=step)
    try:
        value = cel.evaluate(
            source, trigger=context["trigger"], events=context["events"], field=_field_label(name)
        )
    except cel.CelError as error:
        if error.kind == cel.UNKNOWN_EVENT:
            return {"preview_error": NO_CAPTURE_YET}
        return {"preview_error": error.message}
    return {"preview": json.dumps(value, ensure_ascii=False)[:200]}
