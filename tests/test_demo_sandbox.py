"""The development demo: its local demo API, what trusts and admits it, and scripts/run.

Everything here is real: the demo API is ``manage.py demo_api`` (httpbin and authlib's token
endpoint under gunicorn, over TLS with its development CA), started as scripts/run starts it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.management import call_command

from cloudfunctions.demo import DEMO_PROCESS, DEMO_WEBHOOK_TOKEN, RETRY_PROCESS
from cloudfunctions.demo_api import DEMO_API_KEY, DEMO_CLIENT_SECRET
from cloudfunctions.demo_api.certs import ensure_certificates
from cloudfunctions.http import transport
from cloudfunctions.management.commands.demo_api import DEMO_API_REFUSED
from orchestration.models import Process, Run, StepRun
from orchestration.processes.services import process_test_run, step_test_run
from orchestration.runs import services as run_services
from tests.demo_api import *  # noqa: F403  (the demo_api and demo_api_settings fixtures)
from tests.demo_api import ROOT, free_port, wait_for_port
from tests.orchestration.run_builders import work

SUCCEEDED = StepRun.Outcome.SUCCEEDED
_SETTINGS = (
    "DEBUG",
    "DEMO_API_HOST",
    "OUTBOUND_ALLOW_LOOPBACK",
    "OUTBOUND_LOOPBACK_HOSTS",
    "OUTBOUND_CA_BUNDLE",
)


def _settings_of(**env: str) -> dict:
    """Load the settings in a fresh process with this environment; return the demo's part."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{k: getattr(settings, k) for k in {_SETTINGS!r}}}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OUTBOUND_", "DEMO_"))}
    clean["DJANGO_SETTINGS_MODULE"] = "orchestration.settings"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _production_env(folder) -> dict[str, str]:
    return {
        "DEBUG": "false",
        "SECRET_KEY": "p" * 60,
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DEMO_API_DIR": str(folder),
        "DEMO_API_PORT": "18443",
    }


def test_production_never_trusts_or_admits_the_demo_api(tmp_path):
    ensure_certificates(tmp_path)  # a development CA on disk, as on a developer's machine
    development = _settings_of(DEBUG="true", DEMO_API_DIR=str(tmp_path), DEMO_API_PORT="18443")
    assert development["DEMO_API_HOST"] == "127.0.0.1:18443"
    assert development["OUTBOUND_LOOPBACK_HOSTS"] == ["127.0.0.1:18443"]
    assert development["OUTBOUND_CA_BUNDLE"] == str(tmp_path / "trust.pem")
    assert development["OUTBOUND_ALLOW_LOOPBACK"] is False  # the rest of loopback stays shut

    production = _settings_of(**_production_env(tmp_path))
    assert production == {
        "DEBUG": False,
        "DEMO_API_HOST": None,
        "OUTBOUND_ALLOW_LOOPBACK": False,
        "OUTBOUND_LOOPBACK_HOSTS": [],
        "OUTBOUND_CA_BUNDLE": None,
    }


def test_production_refuses_to_start_the_demo_api(tmp_path):
    port = free_port()
    env = {**os.environ, **_production_env(tmp_path), "DEMO_API_PORT": str(port)}
    done = subprocess.run(
        [sys.executable, "manage.py", "demo_api"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert DEMO_API_REFUSED in done.stderr
    assert not list(tmp_path.iterdir())  # no CA made either
    assert not wait_for_port(port, seconds=1)


def _get(url: str) -> transport.OutboundResponse:
    request = transport.OutboundRequest("GET", url)
    return transport.send(request, allowed_hosts={transport.host_of(url)})


def test_loopback_is_admitted_for_the_named_host_and_port_only(
    settings, tls_httpserver, tls_ca_bundle
):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    settings.OUTBOUND_CA_BUNDLE = tls_ca_bundle
    tls_httpserver.expect_request("/ping").respond_with_json({"ok": True})
    port = tls_httpserver.port
    url = f"https://127.0.0.1:{port}/ping"
    for named in ([], [f"127.0.0.1:{port + 1}"], [f"localhost:{port}"], ["127.0.0.1"]):
        settings.OUTBOUND_LOOPBACK_HOSTS = named
        with pytest.raises(transport.OutboundError) as refused:
            _get(url)
        assert refused.value.stage == "ssrf", named
    settings.OUTBOUND_LOOPBACK_HOSTS = [f"127.0.0.1:{port}"]
    assert _get(url).status == 200
    with pytest.raises(transport.OutboundError) as refused:
        _get(f"https://localhost:{port}/ping")  # the same address under another name
    assert refused.value.stage == "ssrf"


def _readme_webhook_example() -> tuple[str, str, dict]:
    """Return the path, bearer token and JSON payload of the README's curl example."""
    readme = (ROOT / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith("curl -X POST"))
    words = shlex.split(line)
    url = words[words.index("-X") + 2]
    headers = [words[i + 1] for i, word in enumerate(words) if word == "-H"]
    token = next(h for h in headers if h.startswith("Authorization:")).split()[-1]
    return re.sub(r"^http://[^/]+", "", url), token, json.loads(words[words.index("-d") + 1])


@pytest.mark.django_db
def test_the_demo_runs_end_to_end_against_the_demo_api(demo_api_settings, client):
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    designer = User.objects.get(username="designer")
    process = Process.objects.get(name=DEMO_PROCESS, version_of__isnull=True)
    find, charge = process.steps.order_by("position")

    first = step_test_run(step=find, actor=designer)
    assert first.outcome == SUCCEEDED, first.error_message
    assert first.captured["status"] == 200
    assert first.captured["body"]["args"]["customer"] == "cus_42"
    second = step_test_run(step=charge, actor=designer)  # maps the first step's capture
    assert second.outcome == SUCCEEDED, second.error_message
    body = second.captured["body"]
    assert body["url"].endswith("/secure/v1/customers/cus_42/charges?environment=demo")
    assert body["json"]["description"] == "Order for John Doe"
    for run in (first, second):
        shown = json.dumps(run.captured) + json.dumps(run.request)
        assert DEMO_API_KEY not in shown and DEMO_CLIENT_SECRET not in shown
        assert "Bearer " not in json.dumps(run.captured, ensure_ascii=False).replace(
            "Bearer ••••••", ""
        )  # the token fetched is masked where the API echoes it

    runs = process_test_run(process=process, actor=designer)
    assert [r.outcome for r in runs] == [SUCCEEDED, SUCCEEDED]

    path, token, payload = _readme_webhook_example()
    assert token == DEMO_WEBHOOK_TOKEN
    assert re.fullmatch(r"/hooks/\d+/", path)  # the first process of a new database: here, another
    answer = client.post(
        f"/hooks/{process.pk}/",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 202, answer.content
    run_id = answer.json()["run_id"]
    assert work(run_id) == Run.Status.SUCCEEDED  # as the workers do
    run = Run.objects.get(pk=run_id)
    assert run.version_id == process.live_version_id
    charged = run.events["charge.created"]["body"]
    assert charged["url"].endswith(
        f"/customers/{payload['customer']['id']}/charges?environment=demo"
    )


@pytest.mark.django_db
def test_the_retry_demo_retries_a_503_and_a_429_then_fails(demo_api_settings):
    demo_api_settings.RUN_RETRY_MAX_DELAY_SECONDS = 0.01  # Retry-After: 1, capped
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    process = Process.objects.get(name=RETRY_PROCESS, version_of__isnull=True)
    run = run_services.run_start(process=process, trigger=Run.Trigger.UI, input={})
    assert work(run.pk) == Run.Status.FAILED
    attempts = [
        (r.step.name, r.attempt, r.captured.get("status"))
        for r in StepRun.objects.filter(run=run).select_related("step").order_by("pk")
    ]
    assert attempts == [
        ("Reserve stock", 1, 503),
        ("Reserve stock", 2, 200),
        ("Take payment", 1, 429),
        ("Take payment", 2, 200),
        ("Ship order", 1, 422),  # a 4xx is final: no retry
    ]
    run.refresh_from_db()
    assert run.error_message.startswith("Ship order:")


def test_ctrl_c_on_scripts_run_stops_the_server_the_worker_and_the_demo_api(tmp_path):
    app_port, api_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DEBUG": "true",
        "PORT": str(app_port),
        "DEMO_API_PORT": str(api_port),
        "DEMO_API_DIR": str(tmp_path / "demo-api"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    log = (tmp_path / "run.log").open("w")
    script = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "run")],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a group of its own, to clean up after a failure
    )
    try:
        assert wait_for_port(app_port, seconds=180), (tmp_path / "run.log").read_text()
        assert wait_for_port(api_port, seconds=60), (tmp_path / "run.log").read_text()
        workers = _processes_with(env["DATABASE_URL"], "run_worker")
        assert workers, "no run_worker started"
        script.send_signal(signal.SIGINT)  # what Ctrl-C sends the script
        assert script.wait(timeout=30) != 0
        assert wait_for_port(app_port, open_=False, seconds=10)
        assert wait_for_port(api_port, open_=False, seconds=10)
        assert not _processes_with(env["DATABASE_URL"], "run_worker")
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
        log.close()


def _processes_with(*words: str) -> list[str]:
    """Return the command lines of this machine's processes containing all the words in their
    command line or environment (a worker shows its DATABASE_URL only in its environment)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read().decode(errors="replace")
        except OSError:
            continue
        if all(word in cmdline or word in environ for word in words):
            found.append(cmdline)
    return found
