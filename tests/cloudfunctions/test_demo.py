from __future__ import annotations

import os
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from cloudfunctions.demo import (
    API_KEY_CONNECTION,
    AWS_CONNECTION,
    DEMO_USERS,
    OAUTH_CONNECTION,
    SUPERUSER,
)
from cloudfunctions.management.commands.seed_demo import SEED_REFUSED
from cloudfunctions.models import Connection
from orchestration.models import Process

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_its_logins_work(capsys, settings):
    settings.DEBUG = True  # demo data is refused outside development
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "designer / designer-demo-pass" in out
    # A request, as the sign-in page passes: django-axes refuses to judge an attempt without.
    sign_in = RequestFactory().post("/login/")
    assert authenticate(sign_in, username="designer", password="designer-demo-pass")
    assert authenticate(sign_in, username="admin", password="admin-demo-pass")
    process = Process.objects.get(name="Charge a customer")
    assert process.steps.count() == 2
    assert all(step.is_complete for step in process.steps.all()), [
        s.problems for s in process.steps.all()
    ]


def test_the_demo_has_a_login_that_opens_the_django_admin(client, settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    username, password, role = DEMO_USERS[-1]
    assert role == SUPERUSER
    user = authenticate(RequestFactory().post("/login/"), username=username, password=password)
    assert user is not None and user.is_superuser
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/cloudfunctions/connection/").status_code == 200


def test_the_demo_connections_call_the_demo_api_and_amazon_connect_says_what_it_needs(settings):
    settings.DEBUG = True
    settings.DEMO_API_HOST = "127.0.0.1:18443"
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    by_name = {c.name: c for c in Connection.objects.all()}
    assert by_name[API_KEY_CONNECTION].base_url == "https://127.0.0.1:18443"
    oauth = by_name[OAUTH_CONNECTION]
    assert oauth.token_url == "https://127.0.0.1:18443/oauth/token"
    assert oauth.auth_type == Connection.AuthType.OAUTH2 and oauth.scopes
    assert "needs AWS" in by_name[AWS_CONNECTION].name
    # A later run on another port follows it.
    settings.DEMO_API_HOST = "127.0.0.1:18444"
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert Connection.objects.get(name=OAUTH_CONNECTION).token_url.startswith(
        "https://127.0.0.1:18444/"
    )


def test_seed_demo_is_refused_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match=re.escape(SEED_REFUSED)):
        call_command("seed_demo")
