"""Which token-endpoint failures a deployed run retries, against real token endpoints on loopback.

A refusal (RFC 6749 section 5.2: invalid_client, invalid_grant, ...) is final: retrying it
repeats the same answer and can lock the client out. Only an endpoint that could not be
reached, timed out, or answered 429 / 5xx is worth another attempt.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from werkzeug import Request, Response

from cloudfunctions.connections.auth import AuthError
from cloudfunctions.connections.auth.oauth2 import OAuth2ClientCredentials, TokenEndpointError
from cloudfunctions.http import errors
from cloudfunctions.step.execution import cloud_function_execute
from orchestration.models import Run
from tests.cloudfunctions.token_store import MemoryTokenStore
from tests.factories import (
    CloudFunctionFactory,
    EventFactory,
    OAuthConnectionFactory,
    ProcessFactory,
    StepFactory,
)
from tests.orchestration.run_builders import deploy, run_to_end

pytestmark = pytest.mark.django_db

WRONG_SECRET = "SECRET-MARKER-wrong-client-secret-61d2"
CONTEXT = {"trigger": {}, "events": {}}


@pytest.fixture
def fast_retries(settings):
    settings.RUN_RETRY_BASE_DELAY_SECONDS = 0.01
    settings.RUN_RETRY_MAX_DELAY_SECONDS = 2
    return settings


def oauth_function(server, *, token_url=None, client_secret=None, max_attempts=3):
    """A step calling the server's protected resource through an OAuth 2.0 connection."""
    connection = OAuthConnectionFactory(
        base_url=server.resource_url.rsplit("/api/", 1)[0],
        client_id=server.client_id,
        client_secret=client_secret or server.client_secret,
        token_url=token_url or server.token_url,
        scopes="read",
    )
    process = ProcessFactory()
    return CloudFunctionFactory(
        step=StepFactory(process=process, position=1, max_attempts=max_attempts),
        connection=connection,
        method="GET",
        uri='"/api/resource"',
        body="",
        completion_event=EventFactory(process=process, name="resource.read"),
    )


def everything_shown(result) -> str:
    return json.dumps([result.error_message, result.request, result.payload])


def test_a_working_token_endpoint_still_succeeds(outbound_tls, oauth_token_server):
    result = cloud_function_execute(
        cloud_function=oauth_function(oauth_token_server), context=CONTEXT, attempt_key="k"
    )

    assert (result.ok, result.payload["status"]) == (True, 200)
    assert oauth_token_server.token_requests == 1


def test_invalid_client_from_the_real_token_endpoint_is_final(outbound_tls, oauth_token_server):
    cf = oauth_function(oauth_token_server, client_secret=WRONG_SECRET)

    result = cloud_function_execute(cloud_function=cf, context=CONTEXT, attempt_key="k")

    assert result.ok is False
    assert result.error_stage == "auth"
    assert result.retryable is False
    assert result.retry_after is None
    assert result.error_message == errors.AUTH_TOKEN_REJECTED.format(
        host=oauth_token_server.host, error="invalid_client"
    )
    assert oauth_token_server.grants == [("/oauth/token", "client_credentials", "none")]
    assert WRONG_SECRET not in everything_shown(result)


def _oauth_error(code, status, retryable, *, shown=None, headers=None):
    """An OAuth 2.0 error response (RFC 6749 section 5.2), whether it is retried, and the
    message it gives (`shown` when the code is not one the app names)."""
    response = Response(
        json.dumps({"error": code}), status, headers, content_type="application/json"
    )
    message = errors.AUTH_TOKEN_REJECTED.format(host="{host}", error=shown or code)
    return response, retryable, message


def _token_answer(**fields):
    body = json.dumps({"access_token": "t", "token_type": "Bearer", **fields})
    return Response(body, 200, content_type="application/json")


@pytest.mark.parametrize(
    ("response", "retryable", "message"),
    [
        # Definitive refusals (RFC 6749 section 5.2) and other 4xx answers: final.
        _oauth_error("invalid_client", 400, False),
        _oauth_error("invalid_client", 401, False, headers={"WWW-Authenticate": "Basic"}),
        _oauth_error("invalid_grant", 400, False),
        _oauth_error("unauthorized_client", 400, False),
        _oauth_error("invalid_scope", 400, False),
        _oauth_error("unsupported_grant_type", 400, False),
        _oauth_error(WRONG_SECRET, 400, False, shown="unknown error"),
        (
            Response("<html>Forbidden</html>", 403, content_type="text/html"),
            False,
            errors.AUTH_TOKEN_HTTP_STATUS.format(host="{host}", status=403),
        ),
        (
            Response("", 302, {"Location": "/elsewhere"}),
            False,
            errors.AUTH_TOKEN_REDIRECT.format(host="{host}", status=302),
        ),
        (
            Response("<html>sign in</html>", 200, content_type="text/html"),
            False,
            errors.AUTH_TOKEN_NOT_JSON,
        ),
        # Expiry times authlib would crash on.
        (_token_answer(expires_at=[1]), False, errors.AUTH_TOKEN_BAD_EXPIRY),
        (_token_answer(expires_in="9" * 5000), False, errors.AUTH_TOKEN_BAD_EXPIRY),
        (_token_answer(expires_in=True), False, errors.AUTH_TOKEN_BAD_EXPIRY),
        # Transient answers: retried.
        (
            Response("<html>Service Unavailable</html>", 503, content_type="text/html"),
            True,
            errors.AUTH_TOKEN_HTTP_STATUS.format(host="{host}", status=503),
        ),
        (
            Response("<html>Bad gateway</html>", 502, content_type="text/html"),
            True,
            errors.AUTH_TOKEN_HTTP_STATUS.format(host="{host}", status=502),
        ),
        _oauth_error("server_error", 500, True),
        _oauth_error("temporarily_unavailable", 400, True),
        (
            Response("slow down", 429, content_type="text/plain"),
            True,
            errors.AUTH_TOKEN_HTTP_STATUS.format(host="{host}", status=429),
        ),
    ],
)
def test_token_endpoint_answers_are_classified(
    outbound_tls, tls_httpserver, oauth_token_server, response, retryable, message
):
    tls_httpserver.expect_request("/answering/token").respond_with_response(response)
    cf = oauth_function(
        oauth_token_server,
        token_url=tls_httpserver.url_for("/answering/token"),
        client_secret=WRONG_SECRET,
    )

    result = cloud_function_execute(cloud_function=cf, context=CONTEXT, attempt_key="k")

    assert (result.ok, result.error_stage) == (False, "auth")
    assert result.retryable is retryable
    assert result.error_message == message.format(host=oauth_token_server.host)
    assert WRONG_SECRET not in everything_shown(result)
    # The API itself was never called without a token.
    assert [entry[0].path for entry in tls_httpserver.log] == ["/answering/token"]


@pytest.mark.parametrize(
    "fields",
    [
        {"expires_in": 3600.0},
        {"expires_in": "3600"},
        {"expires_at": 4102444800.0},  # a float authlib makes an int of
        {"expires_at": "2100-01-01T00:00:00Z", "expires_in": 3600},  # text it falls back from
    ],
)
def test_expiry_times_authlib_reads_are_accepted(
    outbound_tls, tls_httpserver, oauth_token_server, admin_user, fields
):
    from cloudfunctions.connections.probe import connection_test_run

    tls_httpserver.expect_request("/odd/token").respond_with_response(_token_answer(**fields))
    cf = oauth_function(oauth_token_server, token_url=tls_httpserver.url_for("/odd/token"))

    result = connection_test_run(connection=cf.connection, actor=admin_user)

    assert result.ok and result.summary.startswith("Token received"), result.summary


def test_a_429_with_retry_after_is_honoured(outbound_tls, tls_httpserver, oauth_token_server):
    tls_httpserver.expect_request("/limited/token").respond_with_response(
        Response("slow down", 429, {"Retry-After": "7"})
    )
    cf = oauth_function(oauth_token_server, token_url=tls_httpserver.url_for("/limited/token"))

    result = cloud_function_execute(cloud_function=cf, context=CONTEXT, attempt_key="k")

    assert (result.error_stage, result.retryable, result.retry_after) == ("auth", True, 7.0)


def test_a_refusal_carries_no_retry_after(outbound_tls, tls_httpserver, oauth_token_server):
    tls_httpserver.expect_request("/refusing/token").respond_with_response(
        Response('{"error": "invalid_client"}', 401, {"Retry-After": "7"})
    )
    cf = oauth_function(oauth_token_server, token_url=tls_httpserver.url_for("/refusing/token"))

    result = cloud_function_execute(cloud_function=cf, context=CONTEXT, attempt_key="k")

    assert (result.retryable, result.retry_after) == (False, None)


def test_an_unreachable_token_endpoint_is_retried(outbound_tls, oauth_token_server):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cf = oauth_function(oauth_token_server, token_url=f"https://127.0.0.1:{port}/token")

    result = cloud_function_execute(cloud_function=cf, context=CONTEXT, attempt_key="k")

    assert (result.ok, result.error_stage, result.retryable) == (False, "connect", True)
    assert result.error_message == errors.OUTBOUND_CONNECT_FAILED.format(host=f"127.0.0.1:{port}")
    assert oauth_token_server.client_secret not in everything_shown(result)


def test_a_token_endpoint_that_times_out_is_retried(
    outbound_tls, tls_socket_server, oauth_token_server
):
    outbound_tls.OUTBOUND_DEADLINE_SECONDS = 1.0
    host = tls_socket_server(lambda sock: (sock.recv(65536), time.sleep(3)))
    cf = oauth_function(oauth_token_server, token_url=f"https://{host}/token")

    result = cloud_function_execute(cloud_function=cf, context=CONTEXT, attempt_key="k")

    assert (result.ok, result.error_stage, result.retryable) == (False, "timeout", True)
    assert oauth_token_server.client_secret not in everything_shown(result)


def test_a_refused_renewal_after_a_401_is_final(outbound_tls, oauth_token_server):
    cf = oauth_function(oauth_token_server)
    assert cloud_function_execute(cloud_function=cf, context=CONTEXT).ok
    # The administrator rotated the secret at the provider only: the cached token is revoked
    # and the stored secret no longer opens the token endpoint.
    oauth_token_server.revoke_access_tokens()
    oauth_token_server.client_secret = "SECRET-MARKER-rotated-93fa"

    result = cloud_function_execute(cloud_function=cf, context=CONTEXT, attempt_key="k")

    assert (result.error_stage, result.retryable) == ("auth", False)
    assert "invalid_client" in result.error_message
    assert [grant for _, grant, _ in oauth_token_server.grants] == ["client_credentials"] * 2


def test_the_provider_raises_a_classified_token_error(outbound_tls, oauth_token_server):
    auth = OAuth2ClientCredentials(
        client_id=oauth_token_server.client_id,
        client_secret=WRONG_SECRET,
        token_url=oauth_token_server.token_url,
        store=MemoryTokenStore(),
    )

    with pytest.raises(TokenEndpointError) as caught:
        auth.fetch_token_for_test()

    assert isinstance(caught.value, AuthError)
    assert (caught.value.stage, caught.value.retryable) == ("token", False)
    assert WRONG_SECRET not in repr(caught.value) + str(caught.value)


# The run engine: attempts actually made


def test_a_run_refused_by_the_token_endpoint_fails_after_one_attempt(
    outbound_tls, oauth_token_server, fast_retries
):
    process = deploy(oauth_function(oauth_token_server, client_secret=WRONG_SECRET).step.process)

    run = run_to_end(process)

    assert run.status == Run.Status.FAILED
    assert oauth_token_server.token_requests == 1
    assert list(run.step_runs.values_list("attempt", "outcome")) == [(1, "failed")]
    assert "invalid_client" in run.error_message
    assert WRONG_SECRET not in run.error_message


def test_a_run_whose_token_endpoint_is_down_is_retried_to_the_limit(
    outbound_tls, tls_httpserver, oauth_token_server, fast_retries
):
    calls = []

    def down(request: Request) -> Response:
        calls.append(request.path)
        return Response("<html>maintenance</html>", 503, content_type="text/html")

    tls_httpserver.expect_request("/down/token").respond_with_handler(down)
    cf = oauth_function(
        oauth_token_server, token_url=tls_httpserver.url_for("/down/token"), max_attempts=3
    )

    run = run_to_end(deploy(cf.step.process))

    assert run.status == Run.Status.FAILED
    assert len(calls) == 3
    assert run.step_runs.count() == 3
    assert "HTTP 503" in run.error_message
