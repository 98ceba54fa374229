from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

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
