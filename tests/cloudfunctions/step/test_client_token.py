"""Retried Amazon Connect requests carry the operation's idempotency token in the body.

Amazon Connect ignores Idempotency-Key; it deduplicates on members botocore marks
``idempotencyToken`` (ClientToken of StartOutboundVoiceContact, ...). The server here stands
in for Amazon Connect and checks every SigV4 signature as AWS computes it (tests/sigv4.py).
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from werkzeug import Request, Response

from cloudfunctions.models import CloudFunction
from cloudfunctions.step.execution import cloud_function_execute, idempotency_token
from cloudfunctions.step.operations import body_idempotency_token
from orchestration.models import Run
from orchestration.processes import deployments
from orchestration.runs import services as run_services
from tests.factories import (
    MARKERS,
    AmazonConnectionFactory,
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
    ProcessFactory,
    StepFactory,
)
from tests.orchestration.run_builders import work
from tests.sigv4 import signature_as_aws_computes_it

pytestmark = pytest.mark.django_db

AWS_SECRET = MARKERS["secret_access_key"]
CONTEXT = {"trigger": {"instance": "inst-1", "phone": "+15555550100"}, "events": {}}
OUTBOUND_VOICE = {
    "DestinationPhoneNumber": "+15555550100",
    "ContactFlowId": "flow-1",
    "InstanceId": "inst-1",
}


class FakeConnect:
    """The loopback server as Amazon Connect: verifies SigV4, records what arrived."""

    def __init__(self, server, prefix: str):
        self.server = server
        self.prefix = prefix
        self.received: list[dict] = []
        self.statuses: list[int] = []  # answers to give before the default 200
        server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    def _handle(self, request: Request) -> Response:
        data = request.get_data()
        claimed = request.headers.get("Authorization", "").rsplit("Signature=", 1)[-1]
        verified = claimed == signature_as_aws_computes_it(request, AWS_SECRET)
        self.received.append(
            {
                "method": request.method,
                "path": request.path.removeprefix(self.prefix),
                "query": dict(request.args),
                "body": json.loads(data) if data else None,
                "verified": verified,
                "idempotency_key": request.headers.get("Idempotency-Key"),
            }
        )
        if not verified:
            return Response('{"message": "signature mismatch"}', 403)
        status = self.statuses.pop(0) if self.statuses else 200
        return Response('{"ContactId": "c-1"}', status, content_type="application/json")

    @property
    def bodies(self) -> list:
        return [entry["body"] for entry in self.received]


@pytest.fixture
def connect(outbound_tls, tls_httpserver):
    """Amazon Connect on loopback, under a path prefix so matching must look past it."""
    outbound_tls.AMAZON_CONNECT_ENDPOINT_OVERRIDE = tls_httpserver.url_for("/aws")
    return FakeConnect(tls_httpserver, "/aws")


def amazon_function(*, method="PUT", uri='"/contact/outbound-voice"', body=None, **kwargs):
    return CloudFunctionFactory(
        connection=AmazonConnectionFactory(region="eu-central-1"),
        method=method,
        uri=uri,
        body=json.dumps(OUTBOUND_VOICE) if body is None else body,
        **kwargs,
    )


def run(cf, attempt_key):
    result = cloud_function_execute(cloud_function=cf, context=CONTEXT, attempt_key=attempt_key)
    assert result.ok, (result.error_stage, result.error_message)
    return result


def test_the_client_token_is_added_signed_and_stable_per_attempt_key(connect):
    cf = amazon_function()

    first = run(cf, "run-1-step-call")
    again = run(cf, "run-1-step-call")
    other = run(cf, "run-2-step-call")

    assert [entry["verified"] for entry in connect.received] == [True, True, True]
    tokens = [body["ClientToken"] for body in connect.bodies]
    assert tokens[0] == tokens[1] != tokens[2]
    assert tokens[0] == idempotency_token("run-1-step-call")
    assert str(uuid.UUID(tokens[0])) == tokens[0] and len(tokens[0]) <= 500
    # The designer's members are sent as they were, the token after them.
    assert connect.bodies[0] == OUTBOUND_VOICE | {"ClientToken": tokens[0]}
    assert connect.received[0]["path"] == "/contact/outbound-voice"
    # The request shown to the user is the one sent.
    for result, token in zip((first, again, other), tokens, strict=True):
        assert json.loads(result.request["body"])["ClientToken"] == token
        assert AWS_SECRET not in json.dumps(result.request)


def test_an_explicit_client_token_is_never_overwritten(connect):
    cf = amazon_function(body=json.dumps(OUTBOUND_VOICE | {"ClientToken": "designer-chosen"}))

    result = run(cf, "run-1-step-call")

    assert connect.bodies == [OUTBOUND_VOICE | {"ClientToken": "designer-chosen"}]
    assert connect.received[0]["verified"]
    assert json.loads(result.request["body"])["ClientToken"] == "designer-chosen"


def test_a_cel_body_gets_the_token_too(connect):
    cf = amazon_function(
        body='{"InstanceId": trigger.instance, "DestinationPhoneNumber": trigger.phone, '
        '"ContactFlowId": "flow-1"}',
        body_mode=CloudFunction.BodyMode.CEL,
    )

    run(cf, "run-3-step-call")

    (body,) = connect.bodies
    assert body == OUTBOUND_VOICE | {"ClientToken": idempotency_token("run-3-step-call")}
    assert connect.received[0]["verified"]


def test_operations_with_placeholders_in_their_uri_match(connect):
    # AssociateApprovedOrigin: PUT /instance/{InstanceId}/approved-origin
    cf = amazon_function(
        uri='"/instance/" + trigger.instance + "/approved-origin"',
        body='{"Origin": "https://example.com"}',
    )

    run(cf, "run-4-step-origin")

    assert connect.bodies == [
        {
            "Origin": "https://example.com",
            "ClientToken": idempotency_token("run-4-step-origin"),
        }
    ]
    assert connect.received[0]["verified"]


@pytest.mark.parametrize(
    ("method", "uri", "body"),
    [
        # No GET operation at this path.
        ("GET", '"/contact/outbound-voice"', json.dumps(OUTBOUND_VOICE)),
        # UpdateContactAttributes has no idempotency token.
        ("POST", '"/contact/attributes"', '{"InstanceId": "inst-1", "Attributes": {}}'),
        # Not an Amazon Connect operation path.
        ("PUT", '"/contact/outbound-voice/extra"', json.dumps(OUTBOUND_VOICE)),
        # A body that is not a JSON object is left alone.
        ("PUT", '"/contact/outbound-voice"', "[1, 2]"),
        # No body at all: nothing to add to.
        ("PUT", '"/contact/outbound-voice"', ""),
    ],
)
def test_requests_without_a_body_token_member_are_sent_unchanged(connect, method, uri, body):
    cf = amazon_function(method=method, uri=uri, body=body)

    run(cf, "run-5-step-x")

    (entry,) = connect.received
    assert entry["verified"]
    assert entry["body"] == (json.loads(body) if body else None)


def test_a_query_string_token_is_not_invented(connect):
    # DeleteInstance's ClientToken is a query parameter: only body members are filled in.
    cf = amazon_function(method="DELETE", uri='"/instance/inst-1"', body="")

    run(cf, "run-6-step-delete")

    (entry,) = connect.received
    assert (entry["query"], entry["body"], entry["verified"]) == ({}, None, True)


def test_editor_test_runs_add_nothing(connect):
    cf = amazon_function()

    run(cf, None)

    assert connect.bodies == [OUTBOUND_VOICE]
    assert connect.received[0]["verified"]


def test_custom_connections_add_nothing(outbound_tls, tls_httpserver):
    received = []

    def handler(request: Request) -> Response:
        received.append((json.loads(request.get_data()), request.headers.get("Idempotency-Key")))
        return Response("{}", content_type="application/json")

    tls_httpserver.expect_request("/contact/outbound-voice").respond_with_handler(handler)
    cf = CloudFunctionFactory(
        connection=ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/").rstrip("/")),
        method="PUT",
        uri='"/contact/outbound-voice"',
        body=json.dumps(OUTBOUND_VOICE),
    )

    run(cf, "run-7-step-call")

    # Custom APIs get the Idempotency-Key header (the same UUID) and an untouched body.
    assert received == [(OUTBOUND_VOICE, idempotency_token("run-7-step-call"))]


def test_a_retried_run_sends_the_same_client_token_on_every_attempt(connect, settings):
    settings.RUN_RETRY_BASE_DELAY_SECONDS = 0.01
    settings.RUN_RETRY_MAX_DELAY_SECONDS = 2
    process = ProcessFactory()
    amazon_function(
        step=StepFactory(process=process, position=1, max_attempts=3),
        completion_event=EventFactory(process=process, name="contact.started"),
    )
    deployments.process_deploy(process=process, actor=None)
    process.refresh_from_db()
    connect.statuses = [503, 500]

    run_ = run_services.run_start(process=process, trigger=Run.Trigger.UI, input={})
    work(run_.pk)
    run_.refresh_from_db()

    assert run_.status == Run.Status.SUCCEEDED
    assert [entry["verified"] for entry in connect.received] == [True, True, True]
    tokens = {body["ClientToken"] for body in connect.bodies}
    step_key = run_.version.steps.get().key
    assert tokens == {idempotency_token(f"run-{run_.key}-step-{step_key}")}
    (token,) = tokens
    shown = run_.step_runs.order_by("attempt").values_list("request", flat=True)
    assert [json.loads(request["body"])["ClientToken"] for request in shown] == [token] * 3


def test_operation_lookup():
    assert body_idempotency_token("PUT", "/contact/outbound-voice") == "ClientToken"
    assert body_idempotency_token("put", "/contact/outbound-voice") == "ClientToken"
    assert body_idempotency_token("PUT", "/instance/i-1/approved-origin") == "ClientToken"
    # A placeholder spans one segment, never an empty one or a slash.
    assert body_idempotency_token("PUT", "/instance//approved-origin") is None
    assert body_idempotency_token("PUT", "/instance/a/b/approved-origin") is None
    assert body_idempotency_token("GET", "/contact/outbound-voice") is None
    assert body_idempotency_token("PUT", "/contact/outbound-voice/") is None
    assert body_idempotency_token("DELETE", "/instance/i-1") is None  # query-string token
    assert body_idempotency_token("POST", "/nowhere") is None


def test_operation_lookup_is_cached():
    body_idempotency_token.cache_clear()
    body_idempotency_token("PUT", "/contact/outbound-voice")
    body_idempotency_token("PUT", "/contact/outbound-voice")

    info = body_idempotency_token.cache_info()
    assert (info.hits, info.misses) == (1, 1)
