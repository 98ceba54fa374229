"""Every URL × anonymous / designer / connection administrator / superuser × GET / POST.

Expectations come from the views' decorators: sign-in first (LoginRequiredMiddleware), then
the allowed methods, then the role's permission. A URL added without a row here fails the
walk test.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import URLResolver, get_resolver, reverse
from django.utils.html import escape

from orchestration.models import Process, Run
from orchestration.web.roles import DESIGN_REFUSED, DESIGNERS, MANAGE_REFUSED
from tests import factories as users
from tests.factories import (
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
)

pytestmark = pytest.mark.django_db

ANY, DESIGNER, ADMIN, PUBLIC = "signed in", "designer", "connection admin", "public"
TOKEN = "webhook token"  # reachable signed out; refused 403 without the process's token
EXEMPT = {"login", "webhook"}  # login_not_required

# name -> {method: who may}; a method missing is answered 405.
RULES = {
    "home": {"GET": ANY},
    "login": {"GET": PUBLIC, "POST": PUBLIC},
    "logout": {"POST": ANY},
    "process-list": {"GET": ANY},
    "process-create": {"GET": DESIGNER, "POST": DESIGNER},
    "process-editor": {"GET": ANY, "POST": DESIGNER},
    "process-duplicate": {"POST": DESIGNER},
    "process-delete": {"GET": DESIGNER, "POST": DESIGNER},
    "process-test": {"POST": DESIGNER},
    "event-sample": {"POST": DESIGNER},
    "step-create": {"POST": DESIGNER},
    "step-editor": {"GET": ANY, "POST": DESIGNER},
    "step-rename": {"POST": DESIGNER},
    "step-move": {"POST": DESIGNER},
    "step-start": {"POST": DESIGNER},
    "step-delete": {"POST": DESIGNER},
    "cloud-function-check": {"POST": DESIGNER},
    "process-runs": {"GET": ANY},
    "process-deploy": {"POST": DESIGNER},
    "process-rollback": {"POST": DESIGNER},
    "webhook-rotate": {"POST": DESIGNER},
    "run-now": {"POST": DESIGNER},
    "run-detail": {"GET": ANY},
    "run-download": {"GET": ANY},
    "run-cancel": {"POST": DESIGNER},
    "run-rerun": {"POST": DESIGNER},
    "webhook": {"POST": TOKEN},
    "connection-list": {"GET": ANY},
    "connection-create": {"GET": ADMIN, "POST": ADMIN},
    "connection-detail": {"GET": ADMIN},
    "connection-edit": {"GET": ADMIN, "POST": ADMIN},
    "connection-delete": {"GET": ADMIN, "POST": ADMIN},
    "connection-test": {"POST": ADMIN},
}

# The admin pages of this project's models and of the task queue's results; Django's admin
# wants is_staff on top. (django_rq's Dashboard entry links to its views under the same rule.)
ADMIN_MODELS = [
    model
    for model in admin.site._registry
    if model._meta.app_label in ("cloudfunctions", "orchestration", "auth", "django_tasks_database")
]
ADMIN_PAGES = ["admin:index"] + [
    f"admin:{m._meta.app_label}_{m._meta.model_name}_{page}"
    for m in ADMIN_MODELS
    for page in ("changelist", "add", "change", "history", "delete")
]


def _project_names():
    names = []
    for pattern in get_resolver().url_patterns:
        stack = [pattern]
        while stack:
            item = stack.pop()
            if isinstance(item, URLResolver):
                if item.namespace != "admin":
                    stack.extend(item.url_patterns)
            elif item.name:
                names.append(item.name)
    return names


def test_every_url_has_a_rule():
    assert sorted(set(_project_names()) - set(RULES)) == []


ROLES = {
    "anonymous": None,
    "designer": users.designer,
    "connection admin": users.connection_admin,
    "superuser": lambda: users.UserFactory(is_superuser=True, is_staff=True),
}


def _may(role: str, who: str) -> bool:
    if who in (PUBLIC, ANY) or role == "superuser":
        return True
    return (role, who) in (("designer", DESIGNER), ("connection admin", ADMIN))


@pytest.fixture
def objects(settings, tls_ca_bundle):
    """One of everything a URL can name. Connection tests stay off the network."""
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    cf = CloudFunctionFactory(connection=ApiKeyConnectionFactory(base_url="https://127.0.0.1:9"))
    process = cf.step.process
    version = Process.objects.create(name=process.name, version_of=process, version_number=1)
    run = Run.objects.create(process=process, version=version, trigger=Run.Trigger.UI)
    return {
        "pk": process.pk,
        "step_pk": cf.step.pk,
        "event_pk": EventFactory(process=process).pk,
        "version_pk": version.pk,
        "run_pk": run.pk,
        "connection": ApiKeyConnectionFactory(base_url="https://127.0.0.1:9").pk,
    }


def _url(name: str, objects: dict) -> str:
    pattern = next(p for p in _patterns() if p[1] == name)[0]
    kwargs = {}
    for key in ("pk", "step_pk", "event_pk", "version_pk", "run_pk"):
        if f"<int:{key}>" in pattern:
            kwargs[key] = objects[key]
    if name.startswith("connection-") and "pk" in kwargs:
        kwargs["pk"] = objects["connection"]
    return reverse(name, kwargs=kwargs)


def _patterns():
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace != "admin":
                    yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern), p.name

    return list(walk(get_resolver().url_patterns))


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", RULES)
def test_matrix(client, objects, name, role, method):
    user = ROLES[role]() if ROLES[role] else None
    if user:
        client.force_login(user)
    url = _url(name, objects)
    response = getattr(client, method.lower())(url)
    who = RULES[name].get(method)
    location = response.headers.get("Location", "")
    if user is None and name not in EXEMPT:
        assert response.status_code == 302 and location.startswith("/login/?next="), response
    elif who is None:
        assert response.status_code == 405
    elif who == TOKEN:
        assert response.status_code == 403 and response.json()["error"]
    elif not _may(role, who):
        assert response.status_code == 403
    else:
        assert response.status_code < 500
        assert response.status_code not in (403, 405)
        assert not location.startswith("/login/?next=")


def _admin_url(name: str) -> str:
    if name.endswith(("_change", "_history", "_delete")):
        model = next(
            m
            for m in ADMIN_MODELS
            if name.rsplit("_", 1)[0] == f"admin:{m._meta.app_label}_{m._meta.model_name}"
        )
        obj = model._default_manager.order_by("pk").first()
        return reverse(name, args=[obj.pk])
    return reverse(name)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_admin_matrix(client, objects, name, role, method):
    from django.contrib.auth.models import Group

    from cloudfunctions.models import ConnectionAuditEntry
    from orchestration.models import StepRun
    from orchestration.runs.tasks import execute_run

    StepRun.objects.create(step_id=objects["step_pk"], outcome="succeeded", captured={})
    ConnectionAuditEntry.objects.create(connection_name="c", action="created")
    execute_run.enqueue(0)  # a task result row for the worker queue's admin pages
    Group.objects.get_or_create(name="Process designers")
    users.UserFactory(username="someone")
    user = ROLES[role]() if ROLES[role] else None
    if user:
        client.force_login(user)
    response = getattr(client, method.lower())(_admin_url(name))
    location = response.headers.get("Location", "")
    if user is None:
        # Django's LoginRequiredMiddleware sends the admin's own pages (its index) to the
        # admin's sign-in (AdminSite.get_urls sets their login_url); model pages to ours.
        sign_in = "/admin/login/?next=" if name == "admin:index" else "/login/?next="
        assert response.status_code == 302 and location.startswith(sign_in)
    elif not user.is_staff:
        assert response.status_code == 302 and location.startswith("/admin/login/")
    else:
        assert response.status_code in (200, 302, 403), response
        if response.status_code == 403:
            # Trails are read-only, even for superusers; connections change in the app only.
            assert any(m in name for m in ("connectionauditentry", "dbtaskresult", "_connection_"))
            assert method == "POST" or name.endswith(("_add", "_delete"))


RQ_PAGES = [
    "/admin/django_rq/dashboard/",
    "/admin/django_rq/dashboard/stats.json",
    "/admin/django_rq/dashboard/stats.json/guessed-token/",
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", RQ_PAGES)
def test_the_rq_dashboard_is_for_staff_only(client, path, role):
    user = ROLES[role]() if ROLES[role] else None
    if user:
        client.force_login(user)
    response = client.get(path)
    if user is None:
        # The dashboard page is an admin view (to the admin's sign-in); stats.json is not.
        location = response.headers["Location"]
        assert response.status_code == 302 and location.startswith(("/login/", "/admin/login/"))
    elif not user.is_staff:
        # stats.json answers 401: no RQ_API_TOKEN is configured, so no token opens it.
        assert response.status_code in (302, 401, 403)
        assert "queues" not in response.content.decode().lower()
    elif path == RQ_PAGES[0]:
        assert response.status_code == 200


# Roles are permissions that the two groups carry, not group names.


def test_the_permission_opens_the_door_without_the_group(client):
    from django.contrib.auth.models import Permission

    user = users.UserFactory()
    user.user_permissions.add(
        Permission.objects.get(codename="design_processes", content_type__app_label="orchestration")
    )
    client.force_login(user)
    assert client.get(reverse("process-create")).status_code == 200
    assert client.get(reverse("connection-create")).status_code == 403


def test_the_group_name_alone_opens_nothing(client):
    from django.contrib.auth.models import Group

    designer = users.designer()
    Group.objects.get(name=DESIGNERS).permissions.clear()
    client.force_login(designer)
    assert client.get(reverse("process-create")).status_code == 403
    assert "New process" not in client.get(reverse("process-list")).content.decode()


@pytest.mark.parametrize(
    "make, permission",
    [
        (users.designer, "orchestration.design_processes"),
        (users.connection_admin, "cloudfunctions.manage_connections"),
    ],
)
def test_each_role_group_carries_its_permission_and_only_it(make, permission):
    user = make()
    assert user.get_all_permissions() == {permission}


# The 403 and 404 pages: inside the layout, saying why and what to do.


def _in_layout(html: str) -> bool:
    return 'href="/processes/"' in html and 'href="/connections/"' in html and "app.css" in html


def test_a_designer_refused_connections_is_told_who_manages_them(designer_client):
    response = designer_client.get(reverse("connection-create"))
    html = response.content.decode()
    assert response.status_code == 403
    assert _in_layout(html)
    assert escape(MANAGE_REFUSED) in html
    assert "Signed in as dana, in Process designers." in html


def test_a_connection_admin_refused_a_process_change_is_told_who_makes_it(admin_client_):
    response = admin_client_.post(reverse("process-create"), {"name": "x"})
    assert response.status_code == 403
    html = response.content.decode()
    assert _in_layout(html) and escape(DESIGN_REFUSED) in html


def test_a_deployed_version_refuses_changes_and_says_to_edit_the_draft(designer_client):
    from orchestration.processes.views import FROZEN_REFUSED

    draft = Process.objects.create(name="Orders")
    version = Process.objects.create(name="Orders", version_of=draft, version_number=3)
    response = designer_client.post(reverse("step-create", args=[version.pk]), {"name": "s"})
    assert response.status_code == 403
    assert escape(FROZEN_REFUSED.format(number=3, name="Orders")) in response.content.decode()


def test_a_missing_page_is_a_styled_404_inside_the_layout(designer_client):
    response = designer_client.get("/processes/999999/")
    html = response.content.decode()
    assert response.status_code == 404
    assert _in_layout(html)
    assert "<title>Page not found · Process Orchestration</title>" in html
    assert "has been deleted" in html


def test_a_missing_page_signed_out_offers_sign_in(client):
    response = client.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in html and f'href="{reverse("login")}"' in html
