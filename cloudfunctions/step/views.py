"""The Cloud function tab of the step editor, and its live field checks."""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from cloudfunctions import cel
from cloudfunctions.cel import paths
from cloudfunctions.connections.auth import AuthError
from cloudfunctions.models import CloudFunction, Connection
from cloudfunctions.step import editor as editor_module
from cloudfunctions.step.curl import to_curl
from cloudfunctions.step.curl_import import CurlImportError, curl_import
from cloudfunctions.step.editor import StepEditor
from cloudfunctions.step.operations import amazon_connect_operations, operation_fill
from orchestration.models import Step, StepRun
from orchestration.processes import routes, step_kinds
from orchestration.processes import services as orchestration_services
from orchestration.processes.refused_samples import refused_sample_pop
from orchestration.processes.selectors import (
    step_context,
    step_latest_run,
)
from orchestration.processes.views import check_editable, editor_context
from orchestration.validators import is_ascii_digits
from orchestration.web.roles import designer_required
from orchestration.web.throttle import (
    Throttled,
    check_field_check_allowed,
    check_test_run_allowed,
)

TEMPLATE = "cloudfunctions/step_editor.html"
NO_CAPTURE_YET = "no captured value yet; run Test on the earlier steps to see one"
MAY_BE_ABSENT = " — may be absent on this path"


def step_editor(request, step: Step):
    if request.method != "POST":
        editor = StepEditor(step)
        configure = editor.is_configured or "configure" in request.GET
        return _render(request, editor, configure=configure)
    check_editable(request, step.process)
    editor = StepEditor(step, request.POST)
    action = request.POST.get("_action")
    if action in FILLERS:
        return _fill(request, editor, action)
    if action in ADD_ROW:
        return _render(request, editor.with_row(ADD_ROW[action]), extra=_last_run(step))
    return _save(request, editor, testing=action in ("test", "test_confirmed"))


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


ADD_ROW = {
    "add_row_query": "query",
    "add_row_headers": "headers",
    "add_row_outcomes": "outcomes",
}


def _chosen_connection(request, cf: CloudFunction):
    pk = request.POST.get("connection", "")
    if is_ascii_digits(pk):
        return (
            Connection.objects.defer(*Connection.SECRET_FIELDS, "oauth_token").filter(pk=pk).first()
        )
    return cf.connection


def _fill(request, editor: StepEditor, action: str):
    """Fill the form from a helper (operation picker, Import cURL) without saving it."""
    fill, notes = FILLERS[action](request, editor.cloud_function)
    if fill:
        editor = editor.with_fill(fill)
    extra = {"fill_notes": notes, "fill_ok": bool(fill), **_last_run(editor.step)}
    return _render(request, editor, extra=extra)


def _save(request, editor: StepEditor, *, testing: bool):
    """Save what was typed; then, for Test, run what this very save stored."""
    step = editor.step
    result = editor.save(actor=request.user)
    if not result.saved:
        if testing and request.htmx and result.refusal != editor_module.INCOMPLETE:
            return _test_refused(request, step, result.refusal)
        if result.refusal == editor_module.INCOMPLETE:
            messages.error(request, result.refusal)
            return _render(request, editor, status=400)
        conflict = result.refusal if result.conflict else None
        return _render(request, editor, conflict=conflict, status=409)
    problems = editor.has_problems()
    if testing:
        if problems and not request.htmx:
            messages.warning(request, editor_module.SAVED_WITH_PROBLEMS)
        return _test(request, editor.reloaded(), result=result, confirmed=_confirmed(request))
    if problems:
        messages.warning(request, editor_module.SAVED_WITH_PROBLEMS)
        for note in result.kept:  # not kept in the draft, so not on the page drawn next
            messages.warning(request, note)
    else:
        messages.success(request, editor_module.SAVED)
    # The page is drawn anew from what is stored: it shows exactly what the next Save sends.
    return redirect("step-editor", pk=step.process_id, step_pk=step.pk)


def _confirmed(request) -> bool:
    return request.POST.get("_action") == "test_confirmed"


def _test_refused(request, step: Step, message: str):
    """Answer an htmx Test whose save was refused: in the result area, as htmx swaps no 4xx.
    The form on screen keeps what was typed, and its revision, so Save stays refused too."""
    context = {"step": step, "test_refused": message}
    return render(request, TEMPLATE + "#test-result", context)


def _test(request, editor: StepEditor, *, result, confirmed: bool):
    """Run the just-saved step for real; a request with side effects needs a confirmation.

    `editor` is read afresh after the save, so the request is the one this press stored.
    """
    step, cf = editor.step, editor.cloud_function
    context = {"step": step, "process": step.process, "cf": cf, "can_edit": True}
    context["kept_saved"] = result.refused
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
    return _render(request, editor, extra=context, status=status)


def _last_run(step: Step) -> dict:
    return _run_context(step, step_latest_run(step=step))


def _run_context(step: Step, run) -> dict:
    """The test result as the page shows it: the run, its curl line and the captured tree."""
    if run is None:
        return {}
    name = step_kinds.get(step.kind).event_name(step)
    root = paths.event_root(name) if name else "response"
    tree = paths.tree(root, run.captured) if run.captured is not None else []
    sent = run.request
    if sent and "connection" not in sent:
        # Stored before requests were kept as sent: add the connection's auth, masked, as
        # it is now (its secrets never loaded).
        connection = (
            Connection.objects.defer(*Connection.SECRET_FIELDS, "oauth_token")
            .filter(cloud_functions__step=step)
            .first()
        )
        sent = editor_module.with_masked_auth(run.request, connection)
    return {"run": run, "request_sent": sent, "curl": to_curl(sent), "tree": tree}


def _input_trees(test: dict, step: Step) -> list[dict]:
    """The data this step can use, as trees: the Test input, then each earlier event, those
    another route may leave out marked so."""
    trees = [{"title": "trigger (Test input)", "nodes": paths.tree("trigger", test["trigger"])}]
    certain = routes.certain_events(test["steps"], step)
    for name, payload in test["events"].items():
        title = f"{name} ({'sample' if name in test['samples'] else 'last Test'})"
        if name not in certain:
            title += MAY_BE_ABSENT
        trees.append({"title": title, "nodes": paths.tree(paths.event_root(name), payload)})
    return trees


def _trigger_leaves(trigger) -> list[dict]:
    nodes = paths.tree("trigger", trigger)
    return [{"path": n.path, "value": n.value, "sample": False} for n in nodes if n.is_leaf]


def _render(request, editor: StepEditor, *, configure=True, conflict=None, status=200, extra=None):
    step = editor.step
    step.refresh_from_db(fields=["problems", "revision"])
    test = step_context(step=step)
    if editor.typed or step.problems:  # a stored step without problems has none to mark
        editor.mark_field_problems(known_events=test["emitted"])
    incomplete = editor.incomplete(known_events=test["emitted"])
    context = editor_context(
        step.process,
        user=request.user,
        steps=test["steps"],
        step=step,
        form=editor.form,
        query_formset=editor.query,
        outcomes_formset=editor.outcomes,
        headers_formset=editor.headers,
        configure=configure,
        conflict=conflict,
        known_events=[paths.event_root(name) for name in sorted(test["emitted"])],
        paths=[
            *_trigger_leaves(test["trigger"]),
            *paths.leaves(test["events"], set(test["samples"])),
        ],
        incomplete=incomplete,
        input_trees=_input_trees(test, step),
    )
    context.update(extra if extra is not None else _last_run(step))
    cf = editor.cloud_function
    if cf.completion_event_id:
        context["refused_sample"] = refused_sample_pop(request, cf.completion_event_id)
        # A sample starts from the shape the last successful Test captured.
        # Of this very event: an Outcomes route's run carries another event's payload.
        last = (
            StepRun.objects.filter(step=step, event_id=cf.completion_event_id)
            .filter(captured__isnull=False)
            .order_by("-started_at", "-pk")
            .first()
        )
        if last is not None:
            context["last_capture_json"] = last.captured_json
    connection = cf.connection if cf.connection_id else None
    if connection is not None and connection.is_amazon_connect:
        context["operations"] = amazon_connect_operations()
    return render(request, TEMPLATE, context, status=status)


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
    test = step_context(step=step)
    known = test["emitted"]
    problems = editor_module.check_field(
        name, source, body_mode=request.POST.get("body_mode", ""), known_events=known
    )
    context = {"field_name": name, "problems": problems, "checked": True}
    if problems:
        context["fix"] = editor_module.quoting_fix(name, source, known_events=known)
    elif source.strip() and name != "body":
        context.update(_preview(source, name, test))
    return render(request, TEMPLATE + "#field-status", context)


def _preview(source: str, name: str, context: dict) -> dict:
    """Evaluate a field on the last captured context, so the designer sees what it gives."""
    if cel.constant_value(source) is not cel.NOT_CONSTANT:
        return {}
    try:
        value = cel.evaluate(
            source,
            trigger=context["trigger"],
            events=context["events"],
            field=editor_module.field_label(name),
        )
    except cel.CelError as error:
        if error.kind == cel.UNKNOWN_EVENT:
            return {"preview_note": NO_CAPTURE_YET}  # nothing to check against: not a problem
        known = editor_module.known_keys(error.message, context)
        return {"preview_error": error.message, "known_keys": known}
    return {"preview": json.dumps(value, ensure_ascii=False)[:200]}
