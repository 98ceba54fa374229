"""The Test connection probe against real TLS servers on loopback, through the view too."""

from __future__ import annotations

import socket
import threading
from urllib.parse import quote, quote_plus

import pytest
from cryptography.fernet import Fernet
from django import db
from django.urls import reverse
from werkzeug import Request, Response

from cloudfunctions.connections.probe import (
    CREDENTIALS_REFUSED,
    REACHED,
    TOKEN_RECEIVED,
    connection_test_run,
)
from cloudfunctions.connections.providers import ConnectionTokenStore
from cloudfunctions.http import errors
from cloudfunctions.models import CloudFunction, Connection, ConnectionAuditEntry
from cloudfunctions.step.execution import cloud_function_execute
from tests.factories import (
    MARKERS,
    AmazonConnectionFactory,
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    OAuthConnectionFactory,
)
from tests.sigv4 import signature_as_aws_computes_it

WRONG_SECRET = "SECRET-MARKER-wrong-client-6e0f"


def host_of(server) -> str:
    return f"127.0.0.1:{server.port}"


def spellings(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), quote_plus(secret)]


def assert_never_shown(secret: str, *texts: str) -> None:
    for text in texts:
        for spelling in spellings(secret):
            assert spelling not in text


def recorded(connection: Connection) -> tuple[Connection, ConnectionAuditEntry]:
    """Return the connection as stored and the audit entry of its latest test."""
    stored = Connection.objects.get(pk=connection.pk)
    entry = stored.audit_entries.filter(action=ConnectionAuditEntry.Action.TESTED).first()
    return stored, entry


def rendered(client, connection: Connection) -> dict[str, str]:
    """Press Test connection through htmx and without it, then open the page again."""
    url = reverse("connection-test", args=[connection.pk])
    partial = client.post(url, HTTP_HX_REQUEST="true")
    full = client.post(url)
    detail = client.get(connection.get_absolute_url())
    for response in (partial, full, detail):
        assert response.status_code == 200
    pages = {
        "partial": partial.content.decode(),
        "full": full.content.decode(),
        "detail": detail.content.decode(),
    }
    assert 'id="test-result"' in pages["partial"]
    assert "<html" not in pages["partial"]
    assert "<html" in pages["full"]
    return pages


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# API key


@pytest.fixture
def api_server(outbound_tls, tls_httpserver):
    """An API at /v1/ answering with the status in ``answer``; it echoes the key back."""
    received: list[Request] = []
    answer = {"status": 200}

    def handler(request: Request) -> Response:
        received.append(request)
        echoed = request.headers.get("X-Api-Key") or request.args.get("api_key") or ""
        return Response(f"you sent {echoed}", answer["status"], {"X-Echo": echoed})

    tls_httpserver.expect_request("/v1/", method="GET").respond_with_handler(handler)
    return tls_httpserver, received, answer


def api_key_connection(server, location: str) -> Connection:
    name = "X-Api-Key" if location == "header" else "api_key"
    return ApiKeyConnectionFactory(
        base_url=server.url_for("/v1"), api_key_location=location, api_key_name=name
    )


@pytest.mark.django_db
@pytest.mark.parametrize("location", ["header", "query"])
def test_api_key_is_sent_and_success_is_recorded(api_server, admin_user, location):
    server, received, _ = api_server
    connection = api_key_connection(server, location)

    result = connection_test_run(connection=connection, actor=admin_user)

    (request,) = received
    sent = request.headers.get("X-Api-Key") if location == "header" else request.args["api_key"]
    assert sent == MARKERS["api_key_value"]
    assert result.ok is True
    assert result.status == 200
    assert result.duration_ms > 0
    assert result.summary == REACHED.format(host=host_of(server), status=200)
    stored, entry = recorded(connection)
    assert (stored.last_test_ok, stored.last_test_summary) == (True, result.summary)
    assert stored.last_tested_at is not None
    assert (entry.actor, entry.detail) == (admin_user, result.summary)


@pytest.mark.django_db
@pytest.mark.parametrize("location", ["header", "query"])
@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_fail_clearly(api_server, admin_user, location, status):
    server, received, answer = api_server
    answer["status"] = status
    connection = api_key_connection(server, location)

    result = connection_test_run(connection=connection, actor=admin_user)

    assert len(received) == 1
    assert result.ok is False
    assert result.status == status
    assert result.summary == CREDENTIALS_REFUSED.format(host=host_of(server), status=status)
    stored, entry = recorded(connection)
    assert (stored.last_test_ok, stored.last_test_summary) == (False, result.summary)
    assert entry.detail == result.summary


@pytest.mark.django_db
def test_a_server_error_is_reached_but_not_ok(api_server, admin_user):
    server, _, answer = api_server
    answer["status"] = 500

    result = connection_test_run(connection=api_key_connection(server, "header"), actor=admin_user)

    assert (result.ok, result.status) == (False, 500)
    assert result.summary == REACHED.format(host=host_of(server), status=500)


@pytest.mark.django_db
@pytest.mark.parametrize("location", ["header", "query"])
def test_an_unreachable_port_is_a_clear_connect_failure(outbound_tls, admin_user, location):
    port = closed_port()
    connection = ApiKeyConnectionFactory(
        base_url=f"https://127.0.0.1:{port}", api_key_location=location, api_key_name="api_key"
    )

    result = connection_test_run(connection=connection, actor=admin_user)

    assert result.ok is False
    assert result.status is None
    assert result.summary == errors.OUTBOUND_CONNECT_FAILED.format(host=f"127.0.0.1:{port}")
    assert recorded(connection)[0].last_test_summary == result.summary


@pytest.mark.django_db
@pytest.mark.parametrize("location", ["header", "query"])
@pytest.mark.parametrize("status", [200, 401])
def test_the_api_key_never_reaches_the_pages(api_server, admin_client_, location, status):
    server, received, answer = api_server
    answer["status"] = status
    connection = api_key_connection(server, location)

    pages = rendered(admin_client_, connection)

    assert len(received) == 2  # the htmx press and the plain one
    outcome = "Succeeded" if status == 200 else "Failed"
    expected = REACHED if status == 200 else CREDENTIALS_REFUSED
    summary = expected.format(host=host_of(server), status=status)
    for page in (pages["partial"], pages["full"]):
        assert outcome in page
        assert summary in page
    assert summary in pages["detail"]  # "Last tested … ago: <summary>" and the audit trail
    stored, entry = recorded(connection)
    assert_never_shown(
        MARKERS["api_key_value"], *pages.values(), stored.last_test_summary, entry.detail
    )


# OAuth 2.0


def oauth_connection(server, **overrides) -> Connection:
    options = {
        "base_url": server.resource_url.removesuffix("/api/resource"),
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "scopes": "read write",
        "token_url": server.token_url,
    }
    return OAuthConnectionFactory(**(options | overrides))


def raw_oauth_token(connection: Connection) -> str | None:
    with db.connection.cursor() as cursor:
        cursor.execute(
            f"SELECT oauth_token FROM {Connection._meta.db_table} WHERE id = %s",  # noqa: S608
            [connection.pk],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_oauth_fetches_a_token_and_caches_it_encrypted(
    outbound_tls, oauth_token_server, admin_user
):
    connection = oauth_connection(oauth_token_server)

    result = connection_test_run(connection=connection, actor=admin_user)

    assert result.ok is True
    assert result.summary == TOKEN_RECEIVED.format(
        host=oauth_token_server.host, details="token_type Bearer, expires_in 3600"
    )
    assert oauth_token_server.grants == [("/oauth/token", "client_credentials", "basic")]
    assert oauth_token_server.scopes == ["read write"]
    (access_token,) = oauth_token_server.access_tokens
    assert ConnectionTokenStore(connection.pk).load().token["access_token"] == access_token
    raw = raw_oauth_token(connection)
    assert raw and access_token not in raw and "access_token" not in raw
    stored, entry = recorded(connection)
    assert_never_shown(access_token, result.summary, stored.last_test_summary, entry.detail)
    assert_never_shown(oauth_token_server.client_secret, result.summary, entry.detail)


@pytest.mark.django_db
def test_oauth_pages_show_the_grant_but_no_secret_or_token(
    outbound_tls, oauth_token_server, admin_client_
):
    connection = oauth_connection(oauth_token_server)

    pages = rendered(admin_client_, connection)

    assert oauth_token_server.token_requests == 2
    for page in (pages["partial"], pages["full"]):
        assert "Succeeded" in page
        assert "Token received" in page
        assert "expires_in 3600" in page
    for token in oauth_token_server.access_tokens:
        assert_never_shown(token, *pages.values())
    assert_never_shown(oauth_token_server.client_secret, *pages.values())


@pytest.mark.django_db
def test_a_wrong_client_secret_is_invalid_client_without_the_secret(
    outbound_tls, oauth_token_server, admin_client_, admin_user
):
    connection = oauth_connection(oauth_token_server, client_secret=WRONG_SECRET)

    result = connection_test_run(connection=connection, actor=admin_user)
    pages = rendered(admin_client_, connection)

    assert result.ok is False
    assert result.summary == errors.AUTH_TOKEN_REJECTED.format(
        host=oauth_token_server.host, error="invalid_client"
    )
    assert oauth_token_server.grants[0] == ("/oauth/token", "client_credentials", "none")
    assert raw_oauth_token(connection) is None
    stored, entry = recorded(connection)
    assert stored.last_test_ok is False
    assert "Failed" in pages["partial"]
    assert "invalid_client" in pages["partial"]
    assert_never_shown(
        WRONG_SECRET, result.summary, stored.last_test_summary, entry.detail, *pages.values()
    )


def test_an_odd_token_answer_fails_the_test_clearly(
    outbound_tls, tls_httpserver, oauth_token_server, admin_client_, admin_user
):
    # authlib raised TypeError on this expires_at, which Test connection answered with a 500.
    odd = {"access_token": "SECRET-MARKER-odd-token", "token_type": "Bearer", "expires_at": [1]}
    tls_httpserver.expect_request("/odd/token").respond_with_json(odd)
    connection = oauth_connection(
        oauth_token_server, token_url=tls_httpserver.url_for("/odd/token")
    )

    pages = rendered(admin_client_, connection)  # each answered 200

    stored, _ = recorded(connection)
    assert stored.last_test_ok is False
    assert stored.last_test_summary == errors.AUTH_TOKEN_BAD_EXPIRY.format(
        host=oauth_token_server.host
    )
    assert_never_shown("SECRET-MARKER-odd-token", *pages.values())


def test_any_other_failure_of_a_test_is_reported_not_raised(admin_user, monkeypatch, caplog):
    import cloudfunctions.connections.probe as connection_test

    def broken(connection):  # stands in for any bug, or a library raising on an odd answer
        raise TypeError("SECRET-MARKER-detail")

    monkeypatch.setattr(connection_test, "_probe", broken)
    result = connection_test_run(connection=ApiKeyConnectionFactory(), actor=admin_user)
    assert (result.ok, result.summary) == (False, connection_test.TEST_CRASHED)
    assert "TypeError" in caplog.text and "SECRET-MARKER" not in caplog.text
    assert "in broken" in caplog.text  # where it was raised, for whoever reads the log


def resource_function(connection: Connection) -> CloudFunction:
    return CloudFunctionFactory(connection=connection, method="GET", uri='"/api/resource"', body="")


def execute(cloud_function_pk: int):
    # A fresh row each time, as a worker would load it.
    cloud_function = CloudFunction.objects.select_related("connection").get(pk=cloud_function_pk)
    return cloud_function_execute(cloud_function=cloud_function, context={})


@pytest.mark.django_db
def test_executions_reuse_the_cached_token_and_renew_once_after_a_401(
    outbound_tls, oauth_token_server, admin_user
):
    connection = oauth_connection(oauth_token_server)
    cloud_function = resource_function(connection)
    assert connection_test_run(connection=connection, actor=admin_user).ok
    (tested_token,) = oauth_token_server.access_tokens

    results = [execute(cloud_function.pk) for _ in range(3)]

    assert [(r.ok, r.payload["status"]) for r in results] == [(True, 200)] * 3
    assert oauth_token_server.token_requests == 1
    assert ConnectionTokenStore(connection.pk).load().token["access_token"] == tested_token

    oauth_token_server.revoke_access_tokens()
    renewed = execute(cloud_function.pk)
    after = [execute(cloud_function.pk) for _ in range(2)]

    assert (renewed.ok, renewed.payload["status"]) == (True, 200)
    assert all(r.ok for r in after)
    assert oauth_token_server.token_requests == 2
    (new_token,) = oauth_token_server.access_tokens
    assert new_token != tested_token
    assert ConnectionTokenStore(connection.pk).load().token["access_token"] == new_token
    assert new_token not in (raw_oauth_token(connection) or "")
    for result in (*results, renewed, *after):
        assert_never_shown(new_token, repr(result))
        assert_never_shown(tested_token, repr(result))


@pytest.mark.django_db(transaction=True)
def test_concurrent_executions_with_an_empty_cache_fetch_one_token(
    outbound_tls, oauth_token_server, sqlite_readers_do_not_fail_writers
):
    connection = oauth_connection(oauth_token_server)
    cloud_function = resource_function(connection)
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    outcomes: list[object] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(execute(cloud_function.pk))
        except Exception as exc:  # surfaced by the assertion below, not lost in the thread
            outcomes.append(exc)
        finally:
            db.connection.close()

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == threads_count
    assert [(getattr(o, "ok", o), getattr(o, "error_message", "")) for o in outcomes] == [
        (True, "")
    ] * threads_count
    assert oauth_token_server.token_requests == 1
    (access_token,) = oauth_token_server.access_tokens
    assert ConnectionTokenStore(connection.pk).load().token["access_token"] == access_token


# Amazon Connect

AMAZON_SECRET = MARKERS["secret_access_key"]


@pytest.fixture
def connect_api(outbound_tls, tls_httpserver):
    """Amazon Connect on loopback: 200 to a request signed with the known key, 403 otherwise."""
    import botocore.session

    outbound_tls.AMAZON_CONNECT_ENDPOINT_OVERRIDE = tls_httpserver.url_for("/").rstrip("/")
    operation = (
        botocore.session.get_session().get_service_model("connect").operation_model("ListInstances")
    )
    checks: list[dict] = []

    def handler(request: Request) -> Response:
        claimed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
        computed = signature_as_aws_computes_it(request, AMAZON_SECRET)
        checks.append(
            {
                "method": request.method,
                "path": request.path,
                "authorization": request.headers["Authorization"],
                "host": request.headers["Host"],
                "claimed": claimed,
                "computed": computed,
            }
        )
        if claimed != computed:
            return Response(f"signature mismatch for {AMAZON_SECRET}", 403)
        return Response('{"InstanceSummaryList": []}', 200, content_type="application/json")

    tls_httpserver.expect_request(operation.http["requestUri"]).respond_with_handler(handler)
    return tls_httpserver, operation, checks


@pytest.mark.django_db
def test_amazon_connect_calls_list_instances_signed_with_sigv4(connect_api, admin_client_):
    server, operation, checks = connect_api
    connection = AmazonConnectionFactory(region="eu-central-1")

    pages = rendered(admin_client_, connection)

    assert len(checks) == 2
    for check in checks:
        assert check["method"] == operation.http["method"] == "GET"
        assert check["path"] == operation.http["requestUri"]
        assert check["host"] == host_of(server)
        assert check["authorization"].startswith(
            f"AWS4-HMAC-SHA256 Credential={connection.access_key_id}/"
        )
        assert "/eu-central-1/connect/aws4_request" in check["authorization"]
        assert check["claimed"] == check["computed"]
    summary = REACHED.format(host=host_of(server), status=200)
    assert summary in pages["partial"] and "Succeeded" in pages["partial"]
    stored, entry = recorded(connection)
    assert (stored.last_test_ok, stored.last_test_summary, entry.detail) == (True, summary, summary)
    assert_never_shown(AMAZON_SECRET, *pages.values(), stored.last_test_summary, entry.detail)


@pytest.mark.django_db
def test_amazon_connect_with_a_wrong_secret_is_refused(connect_api, admin_user):
    server, _, checks = connect_api
    wrong = "SECRET-MARKER-aws-wrong-0b7c"
    connection = AmazonConnectionFactory(region="us-east-1", secret_access_key=wrong)

    result = connection_test_run(connection=connection, actor=admin_user)

    (check,) = checks
    assert check["claimed"] != check["computed"]
    assert (result.ok, result.status) == (False, 403)
    assert result.summary == CREDENTIALS_REFUSED.format(host=host_of(server), status=403)
    stored, entry = recorded(connection)
    for secret in (wrong, AMAZON_SECRET):
        assert_never_shown(secret, result.summary, stored.last_test_summary, entry.detail)


@pytest.mark.django_db
def test_a_cached_token_under_a_retired_key_is_fetched_again(outbound_tls, oauth_token_server):
    connection = oauth_connection(oauth_token_server)
    cloud_function = resource_function(connection)
    foreign = Fernet(Fernet.generate_key())
    stale = foreign.encrypt(b'{"access_token": "retired", "token_type": "Bearer"}').decode()
    with db.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Connection._meta.db_table} SET oauth_token = %s WHERE id = %s",  # noqa: S608
            [stale, connection.pk],
        )
    assert raw_oauth_token(connection) == stale

    result = execute(cloud_function.pk)

    assert (result.ok, result.error_message) == (True, "")
    assert oauth_token_server.token_requests == 1
    (access_token,) = oauth_token_server.access_tokens
    assert ConnectionTokenStore(connection.pk).load().token["access_token"] == access_token


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value", ["SECRET-MARKER-\u2018quoted\u2019", "SECRET-MARKER-two\nSECRET-MARKER-lines-9c"]
)
def test_a_key_http_cannot_carry_fails_clearly_without_quoting_it(api_server, admin_client_, value):
    server, received, _ = api_server
    connection = ApiKeyConnectionFactory(
        base_url=server.url_for("/v1"), api_key_name="X-Api-Key", api_key_value=value
    )

    pages = rendered(admin_client_, connection)

    assert received == []
    summary = errors.OUTBOUND_HEADER_UNSENDABLE.format(host=host_of(server))
    assert summary in pages["partial"] and "Failed" in pages["partial"]
    stored, entry = recorded(connection)
    assert stored.last_test_ok is False
    assert stored.last_test_summary == entry.detail == summary
    for secret in (value, *value.split("\n")):
        assert_never_shown(secret, *pages.values())
