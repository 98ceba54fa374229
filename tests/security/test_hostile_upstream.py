"""A hostile upstream: a real TLS server on loopback echoes each request it gets, the
credentials in it spelled every way an API can spell them, and nothing may give them back.

Hypothesis draws the secret (from several alphabets), the spelling, the offset inside the
echo, the content type and whether the answer is cut at the size cap; every drawn answer is
checked in what a call returns, the stored step run, the event's pinned sample and the log.
A second test sends every spelling at once and checks pages, htmx fragments, the admin,
``manage.py dumpdata`` and the connection's audit trail.
"""

from __future__ import annotations

import io
import json
import logging
import string
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug import Request, Response

from cloudfunctions.step.execution import cloud_function_execute
from orchestration.models import CompletionEvent, StepRun
from orchestration.processes.services import event_sample_pin, step_run_record
from tests.cloudfunctions.step.test_views import _post
from tests.factories import (
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
    OAuthConnectionFactory,
)
from tests.security.conftest import tally_spellings
from tests.security.spellings import ENCODINGS, as_text, leaks

pytestmark = pytest.mark.django_db

MANY = settings(
    max_examples=120,
    deadline=None,
    # The same examples on every run: a red CI run must mean a change broke something.
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CONTENT_TYPES = [
    "application/json",
    "application/problem+json",
    "text/plain",
    "text/html; charset=utf-8",
    "application/octet-stream",
]
# How the echo wraps what it spells: a JSON document, text around it, or the bare spelling.
SHAPES = ["json document", "text", "bare", "json number"]
# Printable ASCII without space travels in a header; the query takes any text.
HEADER_SAFE = string.ascii_letters + string.digits + "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
ALPHABETS = {
    "letters and digits": st.text(string.ascii_letters + string.digits, min_size=8, max_size=40),
    "URL and base64 specials": st.text("aZ09/+=&%?#~-_.", min_size=8, max_size=40),
    "HTML and JSON specials": st.text("aZ9<>&\"'\\/", min_size=8, max_size=40),
    "printable ASCII": st.text(HEADER_SAFE, min_size=8, max_size=40),
    "digits": st.integers(10**7, 10**17).map(str),
    "any text": st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=8, max_size=30
    ),
}


@dataclass
class Echo:
    """What the server does with the credential it finds in the next request."""

    encoding: str = "raw"
    prefix: str = ""
    content_type: str = "application/json"
    shape: str = "json document"

    def answer(self, request: Request) -> Response:
        credential = (
            request.headers.get("X-API-Key")
            or request.args.get("key")
            or request.headers.get("Authorization", "")
        )
        dump = f"{request.method} {request.full_path}\n" + "".join(
            f"{name}: {value}\n" for name, value in request.headers.items()
        )
        spelled = ENCODINGS[self.encoding](self.prefix + credential + "!tail")
        if self.shape == "json number" and credential.isdigit():
            body = f'{{"int": {credential}, "float": {credential}.0, "exp": {float(credential)!r}}}'
        elif self.shape in ("json document", "json number"):
            body = json.dumps({"echo": spelled, "request": dump})
        elif self.shape == "text":
            body = f"You sent {spelled} in:\n{dump}"
        else:
            body = spelled
        # A header carries Latin-1 only: other text goes percent-encoded, as servers do.
        header = spelled if spelled.isascii() else quote(spelled, safe="")
        header = " ".join(header.split())[:300]
        return Response(body, 200, {"X-Echo": header}, content_type=self.content_type)


def _sendable(kind: str, secret: str) -> str:
    """Return the secret with the characters its way of travelling cannot carry replaced."""
    if kind == "query key":
        return secret
    # authlib sends client_secret_basic unencoded (not form-encoded as RFC 6749 section
    # 2.3.1 asks), so "+" and "%" would not survive the test token endpoint's decoding.
    allowed = HEADER_SAFE.replace("+", "").replace("%", "") if kind == "oauth" else HEADER_SAFE
    return "".join(char if char in allowed else "x" for char in secret)


def _connection(kind: str, base: str, secret: str, oauth_token_server):
    if kind == "oauth":
        oauth_token_server.client_secret = secret
        return OAuthConnectionFactory(
            base_url=base,
            token_url=oauth_token_server.token_url,
            client_id=oauth_token_server.client_id,
            client_secret=secret,
        )
    location = "header" if kind == "header key" else "query"
    name = "X-API-Key" if location == "header" else "key"
    return ApiKeyConnectionFactory(
        base_url=base, api_key_location=location, api_key_name=name, api_key_value=secret
    )


def _secrets(secret: str, oauth_token_server) -> list[str]:
    return [secret, *oauth_token_server.access_tokens]


def _exposed(secrets: list[str], **places: object) -> list[str]:
    """Return "place: spelling" for every spelling of every secret found in any place."""
    found = []
    for place, value in places.items():
        text = as_text(value)
        for secret in secrets:
            found.extend(f"{place}: {core!r}" for core in leaks(text, secret))
    return found


def _app_records(caplog) -> str:
    # werkzeug's access log belongs to the upstream (the test server), not to this app, and
    # factory_boy's names the test's own modules (a drawn secret may be "cloudfun").
    records = [r for r in caplog.records if r.name.split(".")[0] not in ("werkzeug", "factory")]
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)


@pytest.fixture
def upstream(outbound_tls, tls_httpserver, oauth_token_server):
    echo = Echo()
    tls_httpserver.expect_request("/api/echo").respond_with_handler(lambda r: echo.answer(r))
    return tls_httpserver, echo, oauth_token_server


@MANY
@given(
    kind=st.sampled_from(["header key", "query key", "oauth"]),
    secret=st.sampled_from(sorted(ALPHABETS)).flatmap(lambda name: ALPHABETS[name]),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    offset=st.integers(0, 5),
    content_type=st.sampled_from(CONTENT_TYPES),
    shape=st.sampled_from(SHAPES),
    cut=st.one_of(st.none(), st.integers(0, 120)),
)
@example(
    kind="query key",
    secret="SECRET/with+specials=&<>",
    encoding="JSON, \\/ escapes",
    offset=0,
    content_type="text/plain",
    shape="json document",
    cut=None,
)
@example(  # found exploring: a secret that names the test's modules
    kind="header key",
    secret="cloudfun",
    encoding="HEX",
    offset=0,
    content_type="application/json",
    shape="json document",
    cut=None,
)
@example(  # found exploring: "\\/" in an HTML-escaped echo is a backslash, not JSON
    kind="header key",
    secret="99999<\\/",
    encoding="HTML",
    offset=0,
    content_type="application/json",
    shape="json document",
    cut=None,
)
@example(  # S4: a numeric key echoed as a JSON number, int and float
    kind="query key",
    secret="4815162342",
    encoding="raw",
    offset=0,
    content_type="application/json",
    shape="json number",
    cut=None,
)
def test_no_spelling_of_a_secret_comes_back(
    upstream, settings, caplog, designer, kind, secret, encoding, offset, content_type, shape, cut
):
    server, echo, oauth_token_server = upstream
    secret = _sendable(kind, secret)
    caplog.set_level(logging.DEBUG)
    settings.OUTBOUND_DEADLINE_SECONDS = 5  # a hang fails the example soon, not in 15 s
    echo.encoding, echo.prefix = encoding, "x" * offset
    echo.content_type, echo.shape = content_type, shape
    connection = _connection(kind, server.url_for("/api").rstrip("/"), secret, oauth_token_server)
    cf = CloudFunctionFactory(
        connection=connection, method="GET", uri='"/echo"', body="", name="echo"
    )
    # The answer is cut at the size cap somewhere around the echo (the cap would cut the
    # token endpoint's answer too, so not for OAuth); every example sets it afresh.
    cut = None if kind == "oauth" else cut
    settings.OUTBOUND_MAX_RESPONSE_BYTES = 5 * 1024 * 1024 if cut is None else 60 + cut
    event = EventFactory(process=cf.step.process, name=f"echoed {cf.pk}")
    cf.step.completion_event = event
    cf.step.save()

    result = cloud_function_execute(cloud_function=cf, context={})
    assert result.ok, result.error_message
    step_run_record(step=cf.step, actor=designer, result=result, is_test=True)
    event_sample_pin(event=event)
    found = _exposed(
        _secrets(secret, oauth_token_server),
        result=[result.payload, result.request, result.error_message],
        step_runs=list(StepRun.objects.filter(step=cf.step).values()),
        sample=CompletionEvent.objects.get(pk=event.pk).sample_payload,
        logs=_app_records(caplog),
    )
    tally_spellings(1, len(found))
    assert not found


def _every_spelling(request: Request) -> Response:
    """Answer with the credential in every spelling at once, at every offset."""
    credential = (
        request.headers.get("X-API-Key")
        or request.args.get("key")
        or request.headers.get("Authorization", "")
    )
    spelled = [
        ENCODINGS[name]("x" * offset + credential + "!")
        for name in ENCODINGS
        for offset in range(3)
    ]
    content_type = request.args.get("as", "application/json")
    body = json.dumps({"echo": spelled}) if "json" in content_type else "\n".join(spelled)
    return Response(body, 200, content_type=content_type)


def _pages(cf, client, admin_client, superuser_client) -> dict[str, str]:
    step = cf.step
    editor = reverse("step-editor", args=[step.process_id, step.pk])
    data = _post(
        step,
        cf.connection,
        method="GET",
        uri=cf.uri,
        body="",
        completion_event_choice="",
        new_event_name="",
        _action="test",
    )
    pages = {
        "step editor Test (htmx)": client.post(editor, data, HTTP_HX_REQUEST="true"),
        "step editor": client.get(editor),
        "process editor": client.get(reverse("process-editor", args=[step.process_id])),
        "Test process": client.post(reverse("process-test", args=[step.process_id]), follow=True),
        "runs": client.get(reverse("process-runs", args=[step.process_id])),
        "Test connection (htmx)": admin_client.post(
            reverse("connection-test", args=[cf.connection.pk]), HTTP_HX_REQUEST="1"
        ),
        "connection": admin_client.get(reverse("connection-detail", args=[cf.connection.pk])),
    }
    for run in StepRun.objects.filter(step=step):
        pages[f"admin step run {run.pk}"] = superuser_client.get(
            f"/admin/orchestration/steprun/{run.pk}/change/"
        )
    pages["admin audit"] = superuser_client.get("/admin/cloudfunctions/connectionauditentry/")
    for name, response in pages.items():
        assert response.status_code < 500, name
    return {name: response.content.decode() for name, response in pages.items()}


@pytest.mark.parametrize("kind", ["header key", "query key", "oauth"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "text/html"])
def test_every_spelling_at_once_reaches_no_page_store_or_log(
    outbound_tls,
    tls_httpserver,
    oauth_token_server,
    designer,
    admin_user,
    superuser,
    caplog,
    kind,
    content_type,
):
    caplog.set_level(logging.DEBUG)
    tls_httpserver.expect_request("/api/echo").respond_with_handler(_every_spelling)
    secret = _sendable(kind, "SECRET-MARKER/echo+me=&<\"'")
    connection = _connection(
        kind, tls_httpserver.url_for("/api").rstrip("/"), secret, oauth_token_server
    )
    cf = CloudFunctionFactory(
        connection=connection, method="GET", uri=f'"/echo?as={content_type}"', body=""
    )
    event = EventFactory(process=cf.step.process, name="echoed")
    cf.step.completion_event = event
    cf.step.save()
    result = cloud_function_execute(cloud_function=cf, context={})
    assert result.ok, result.error_message
    step_run_record(step=cf.step, actor=designer, result=result, is_test=True)
    event_sample_pin(event=event)
    clients = []
    for user in (designer, admin_user, superuser):
        clients.append(Client())
        clients[-1].force_login(user)
    pages = _pages(cf, *clients)
    dumped = io.StringIO()
    call_command("dumpdata", "cloudfunctions", "orchestration", "auth", stdout=dumped)
    found = _exposed(
        _secrets(secret, oauth_token_server),
        result=[result.payload, result.request],
        dumpdata=dumped.getvalue(),
        logs=_app_records(caplog),
        **pages,
    )
    tally_spellings(len(ENCODINGS) * 3, len(found))
    assert not found
