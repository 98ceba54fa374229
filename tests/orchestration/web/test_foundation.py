from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Group
from django.urls import reverse

from orchestration.web.roles import CONNECTION_ADMINS, DESIGNERS, ROLES

pytestmark = pytest.mark.django_db


def test_roles_exist_as_groups_after_migrations():
    assert set(Group.objects.values_list("name", flat=True)) >= {DESIGNERS, CONNECTION_ADMINS}


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.group)
def test_each_role_group_holds_its_permission_after_migrations(role):
    held = Group.objects.get(name=role.group).permissions.select_related("content_type")
    assert [f"{p.content_type.app_label}.{p.codename}" for p in held] == [role.permission]


def test_the_webhook_is_open_signed_out_and_authenticates_by_its_token(client):
    # login_not_required: no sign-in redirect, the token check answers instead.
    response = client.post("/hooks/1/", content_type="application/json", data={})
    assert response.status_code == 403 and response.json()["error"]


@pytest.mark.parametrize("url", ["/", "/processes/", "/connections/", "/connections/new/"])
def test_signed_out_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_fragment_asked_for_after_sign_out_sends_the_whole_page_to_sign_in(client):
    # A run page polling after its session ended: the sign-in page must not land inside it.
    response = client.get(
        "/runs/1/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="run-body",
        HTTP_HX_CURRENT_URL="http://testserver/runs/1/?tab=a",
    )
    assert response.status_code == 200 and not response.content
    assert response["HX-Redirect"] == reverse("login") + "?next=/runs/1/%3Ftab%3Da"


def test_sign_in_page_is_open(client):
    assert client.get(reverse("login")).status_code == 200


def test_designer_cannot_open_admin_only_pages(designer_client):
    assert designer_client.get(reverse("connection-create")).status_code == 403


def test_base_layout_has_navigation_htmx_and_csrf_header(designer_client):
    html = designer_client.get(reverse("process-list")).content.decode()
    assert 'href="/processes/"' in html and 'href="/connections/"' in html
    assert "htmx" in html and "/static/" in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    # Offline: every script and stylesheet comes from this server. (Not "cdn" anywhere in
    # the page: a random CSP nonce once spelled it.)
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert urls and all(url.startswith(("/", "#")) and not url.startswith("//") for url in urls)


def _manage(*args, **env):
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        capture_output=True,
        text=True,
        env={**inherited, "DJANGO_SETTINGS_MODULE": "orchestration.settings", **env},
        cwd=Path(__file__).resolve().parents[3],
        timeout=120,
    )


def test_production_refuses_to_start_without_keys():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        capture_output=True,
        text=True,
        env={**env, "DEBUG": "false"},
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY and FIELD_ENCRYPTION_KEY" in result.stderr


def test_check_deploy_is_clean_in_production():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="x" * 20 + Fernet.generate_key().decode(),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="orchestration.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
