"""Deployments, triggers and run history."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from orchestration.jsontext import JSONTextError, NotAnObjectError, parse_json_object
from orchestration.models import Process, Run
from orchestration.processes import deployments, step_kinds
from orchestration.runs import selectors as run_selectors
from orchestration.runs import services as run_services
from orchestration.validators import is_ascii_digits
from orchestration.web.roles import designer_required

WEBHOOK_BAD_TOKEN = "Missing or wrong webhook token."
WEBHOOK_TOO_LARGE = "The payload is larger than {limit} bytes."
WEBHOOK_BAD_JSON = "The body is not valid JSON: {msg} at line {line}, column {column}."
WEBHOOK_NOT_OBJECT = "The body must be a JSON object."
RUN_INPUT_BAD_JSON = "Run input is not valid JSON: {msg} at line {line}, column {column}."
RUN_INPUT_NOT_OBJECT = "Run input must be a JSON object."


def _draft(pk: int) -> Process:
    return get_object_or_404(Process, pk=pk, version_of__isnull=True)


@require_POST
@designer_required
def process_deploy(request, pk: int):
    process = _draft(pk)
    try:
        version = deployments.process_deploy(process=process, actor=request.user)
    except deployments.DeployRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Deployed version {version.version_number}; it is live now.")
    return redirect("process-runs", pk=pk)


@require_POST
@designer_required
def process_rollback(request, pk: int, version_pk: int):
    process = _draft(pk)
    version = get_object_or_404(Process, pk=version_pk, version_of=process)
    deployments.process_rollback(process=process, version=version)
    messages.success(request, f"Version {version.version_number} is live again.")
    return redirect("process-runs", pk=pk)


@require_POST
@designer_required
def webhook_rotate(request, pk: int):
    process = _draft(pk)
    token = deployments.webhook_token_rotate(process=process)
    context = _runs_context(request, process)
    context["new_token"] = token
    return render(request, "orchestration/process_runs.html", context)


@require_POST
@designer_required
def run_now(request, pk: int):
    process = _draft(pk)
    text = request.POST.get("input", "").strip() or "{}"
    try:
        data = parse_json_object(text)
    except JSONTextError as exc:
        message = RUN_INPUT_BAD_JSON.format(msg=exc.msg, line=exc.line, column=exc.column)
        return _runs_page(request, process, input_error=message, input_text=text, status=400)
    except NotAnObjectError:
        return _runs_page(
            request, process, input_error=RUN_INPUT_NOT_OBJECT, input_text=text, status=400
        )
    try:
        run = run_services.run_start(
            process=process, trigger=Run.Trigger.UI, input=data, actor=request.user
        )
    except run_services.RunRefused as refused:
        return _runs_page(request, process, input_error=str(refused), input_text=text, status=400)
    if run_services.queue_refused(run):  # the run page says why
        messages.error(request, f"Run #{run.pk} could not be queued.")
    else:
        messages.success(request, f"Run #{run.pk} queued.")
    return redirect(run)


def _runs_context(request, process: Process) -> dict:
    runs = process.runs.select_related("version").order_by("-created_at", "-pk")
    status = request.GET.get("status", "")
    if status in Run.Status.values:
        runs = runs.filter(status=status)
    page = Paginator(runs, 25).get_page(request.GET.get("page"))
    versions = process.versions.order_by("-version_number")
    return {
        "process": process,
        "page": page,
        "status": status,
        "statuses": Run.Status.choices,
        "versions": versions,
        "any_active": any(run.is_active for run in page),
        "webhook_url": request.build_absolute_uri(f"/hooks/{process.pk}/"),
        "input_text": json.dumps(process.test_input or {}, indent=2),
    }


def _runs_page(request, process, *, status=200, **extra):
    context = {**_runs_context(request, process), **extra}
    template = "orchestration/process_runs.html"
    if request.htmx and request.htmx.target == "runs-table":
        template += "#runs-table"
    return render(request, template, context, status=status)


@require_GET
def process_runs(request, pk: int):
    return _runs_page(request, _draft(pk))


@require_GET
def run_detail(request, run_pk: int):
    run = get_object_or_404(Run.objects.select_related("process", "version"), pk=run_pk)
    template = "orchestration/run_detail.html"
    if request.htmx and request.htmx.target == "run-body":
        template += "#run-body"
    context = {
        "run": run,
        "timeline": run_selectors.run_timeline(run=run),
        "input_tree": step_kinds.value_tree(run.input),
        "rerun": run.first_rerun(),
    }
    return render(request, template, context)


@require_GET
def run_download(request, run_pk: int):
    """The run as a JSON file; what it holds was masked before it was stored."""
    run = get_object_or_404(Run.objects.select_related("process", "version"), pk=run_pk)
    response = JsonResponse(run_selectors.run_export(run=run), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.json"'
    return response


@require_POST
@designer_required
def run_cancel(request, run_pk: int):
    run = get_object_or_404(Run, pk=run_pk)
    if run_services.run_cancel(run=run, actor=request.user):
        messages.success(request, f"Run #{run.pk} cancelled.")
    else:
        messages.error(request, "Only a queued or running run can be cancelled.")
    return redirect(run)


@require_POST
@designer_required
def run_rerun(request, run_pk: int):
    run = get_object_or_404(Run, pk=run_pk)
    try:
        new = run_services.run_rerun(run=run, actor=request.user)
    except run_services.RunRefused as refused:
        messages.error(request, str(refused))
        return redirect(run)
    if run_services.queue_refused(new):  # the new run's page says why
        messages.error(request, f"Run #{new.pk} could not be queued.")
    else:
        messages.success(request, f"Run #{new.pk} re-runs #{run.pk} from its failed step.")
    return redirect(new)


@csrf_exempt
@login_not_required  # the process's webhook token authenticates
@require_POST
def webhook(request, pk: int):
    """Start a run from outside: POST JSON with the process's token as a bearer token."""
    process = Process.objects.filter(pk=pk, version_of__isnull=True).first()
    # The scheme name is case-insensitive (RFC 9110): "bearer" is as good as "Bearer".
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    if process is None or not deployments.webhook_token_matches(process, token):
        return JsonResponse({"error": WEBHOOK_BAD_TOKEN}, status=403)
    limit = settings.WEBHOOK_MAX_BYTES
    length = request.headers.get("Content-Length", "0")
    if not is_ascii_digits(length) or int(length) > limit:
        return JsonResponse({"error": WEBHOOK_TOO_LARGE.format(limit=limit)}, status=413)
    body = request.read(limit + 1)
    if len(body) > limit:
        return JsonResponse({"error": WEBHOOK_TOO_LARGE.format(limit=limit)}, status=413)
    try:
        data = parse_json_object(body or b"{}")
    except JSONTextError as exc:
        message = WEBHOOK_BAD_JSON.format(msg=exc.msg, line=exc.line, column=exc.column)
        return JsonResponse({"error": message}, status=400)
    except NotAnObjectError:
        return JsonResponse({"error": WEBHOOK_NOT_OBJECT}, status=400)
    try:
        run = run_services.run_start(process=process, trigger=Run.Trigger.WEBHOOK, input=data)
    except run_services.RunRefused as refused:
        return JsonResponse({"error": str(refused)}, status=409)
    if run_services.queue_refused(run):
        body = {"run_id": run.pk, "status": run.status, "error": run.error_message}
        return JsonResponse(body, status=503)
    return JsonResponse({"run_id": run.pk, "status": run.status}, status=202)
