"""Connection pages: everyone signed in may list; only Connection administrators manage."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from cloudfunctions.connections import selectors, services
from cloudfunctions.connections.forms import ConnectionForm
from cloudfunctions.models import Connection
from orchestration.web.roles import connection_admin_required
from orchestration.web.throttle import Throttled, check_test_run_allowed


@require_GET
def connection_list(request):
    return render(
        request,
        "cloudfunctions/connection_list.html",
        {"connections": selectors.connection_list()},
    )


def _connection_form_page(request, form: ConnectionForm, connection: Connection | None):
    template = "cloudfunctions/connection_form.html"
    if request.htmx and request.POST.get("_refresh"):
        template += "#fields"
    elif _inline(request):
        template = INLINE_TEMPLATE
    return render(request, template, {"form": form, "connection": connection})


INLINE_TEMPLATE = "cloudfunctions/connection_inline.html"


def _inline(request) -> bool:
    """The step editor's "New connection" form, which stays on the editor page."""
    return bool(request.htmx and request.GET.get("inline"))


def _create_or_edit(request, connection: Connection | None):
    # Inline in the step editor, field ids must not collide with the step form's.
    auto_id = "inline_%s" if _inline(request) else "id_%s"
    form = ConnectionForm(request.POST or None, instance=connection, auto_id=auto_id)
    if request.method == "POST" and not request.POST.get("_refresh") and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in ConnectionForm.Meta.fields}
        if connection is None:
            connection = services.connection_create(
                actor=request.user, fields=fields, secrets=form.secret_changes()
            )
            if _inline(request):
                response = render(request, INLINE_TEMPLATE, {"created": connection})
                created = {"pk": connection.pk, "name": connection.name}
                created["provider"] = connection.provider
                # The editor's script adds the new connection to its picker and selects it.
                return trigger_client_event(response, "connectionCreated", created)
            messages.success(request, f"Connection “{connection.name}” created.")
        else:
            services.connection_update(
                connection=connection,
                actor=request.user,
                fields=fields,
                secrets=form.secret_changes(),
            )
            messages.success(request, f"Connection “{connection.name}” saved.")
        return redirect(connection)
    if request.method == "POST" and request.POST.get("_refresh"):
        # Re-render for a provider or auth type switch: show fields, not errors.
        form = ConnectionForm(request.POST, instance=connection, auto_id=auto_id)
        form._errors = {}
    return _connection_form_page(request, form, connection)


@require_http_methods(["GET", "POST"])
@connection_admin_required
def connection_create(request):
    return _create_or_edit(request, None)


@require_http_methods(["GET", "POST"])
@connection_admin_required
def connection_edit(request, pk: int):
    return _create_or_edit(request, get_object_or_404(Connection, pk=pk))


@require_GET
@connection_admin_required
def connection_detail(request, pk: int):
    connection = get_object_or_404(Connection, pk=pk)
    return render(request, "cloudfunctions/connection_detail.html", _detail_context(connection))


def _detail_context(connection: Connection, **extra) -> dict:
    return {
        "connection": connection,
        "audit": connection.audit_entries.select_related("actor")[:50],
        "used_by": connection.cloud_functions.select_related("step__process"),
        **extra,
    }


@require_http_methods(["GET", "POST"])
@connection_admin_required
def connection_delete(request, pk: int):
    connection = get_object_or_404(Connection, pk=pk)
    error = None
    if request.method == "POST":
        try:
            services.connection_delete(connection=connection, actor=request.user)
        except services.ConnectionInUse as exc:
            error = str(exc)
        else:
            messages.success(request, f"Connection “{connection.name}” deleted.")
            return redirect("connection-list")
    return render(
        request, "cloudfunctions/connection_delete.html", {"connection": connection, "error": error}
    )


@require_POST
@connection_admin_required
def connection_test(request, pk: int):
    from cloudfunctions.connections.probe import connection_test_run

    connection = get_object_or_404(Connection, pk=pk)
    try:
        check_test_run_allowed(request.user)
    except Throttled as throttled:
        messages.error(request, throttled.message)
        return redirect(connection)
    result = connection_test_run(connection=connection, actor=request.user)
    template = "cloudfunctions/connection_detail.html"
    if request.htmx:
        template += "#test-result"
    else:
        connection.refresh_from_db()
    return render(request, template, _detail_context(connection, result=result))
