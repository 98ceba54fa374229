from __future__ import annotations

import threading
import time
import traceback

import pytest
from werkzeug import Response

from cloudfunctions.connections.auth import AuthError
from cloudfunctions.connections.auth.oauth2 import OAuth2ClientCredentials
from cloudfunctions.http import errors
from cloudfunctions.http.transport import OutboundError, OutboundRequest, send
from tests.cloudfunctions.token_store import MemoryTokenStore

WRONG_SECRET = "SECRET-MARKER-wrong-44e1"


def provider(server, store=None, **overrides) -> OAuth2ClientCredentials:
    options = {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "token_url": server.token_url,
        "scopes": ["read", "write"],
        "store": store or MemoryTokenStore(),
    }
    return OAuth2ClientCredentials(**(options | overrides))


def call_resource(server, auth) -> int:
    request = auth.apply(OutboundRequest("GET", server.resource_url))
    return send(request, allowed_hosts={server.host}).status


def call_with_renew_once(server, auth) -> int:
    status = call_resource(server, auth)
    if status == 401 and auth.renew():
        status = call_resource(server, auth)
    return status


def shown(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


def test_a_token_is_fetched_once_and_cached(outbound_tls, oauth_token_server):
    auth = provider(oauth_token_server)

    assert call_resource(oauth_token_server, auth) == 200
    assert call_resource(oauth_token_server, auth) == 200

    assert oauth_token_server.grants == [("/oauth/token", "client_credentials", "basic")]
    assert oauth_token_server.scopes == ["read write"]


def test_a_token_about_to_expire_is_renewed(outbound_tls, oauth_token_server):
    store = MemoryTokenStore()
    auth = provider(oauth_token_server, store)
    call_resource(oauth_token_server, auth)
    token = store.token
    store.put(token | {"expires_at": int(time.time()) + 30})  # inside the 60 s leeway

    assert call_resource(oauth_token_server, auth) == 200

    assert oauth_token_server.token_requests == 2
    assert store.token["access_token"] != token["access_token"]


def test_a_refresh_token_is_used_at_the_refresh_url(outbound_tls, oauth_token_server):
    oauth_token_server.issue_refresh_token = True
    store = MemoryTokenStore()
    auth = provider(oauth_token_server, store, refresh_url=oauth_token_server.refresh_url)
    call_resource(oauth_token_server, auth)
    store.put(store.token | {"expires_at": int(time.time()) - 1})

    assert call_resource(oauth_token_server, auth) == 200

    assert oauth_token_server.grants == [
        ("/oauth/token", "client_credentials", "basic"),
        ("/oauth/refresh", "refresh_token", "basic"),
    ]


def test_a_refused_refresh_token_falls_back_to_client_credentials(outbound_tls, oauth_token_server):
    oauth_token_server.issue_refresh_token = True
    store = MemoryTokenStore()
    auth = provider(oauth_token_server, store, refresh_url=oauth_token_server.refresh_url)
    call_resource(oauth_token_server, auth)
    store.put(store.token | {"expires_at": 1, "refresh_token": "revoked"})

    assert call_resource(oauth_token_server, auth) == 200

    assert [grant for _, grant, _ in oauth_token_server.grants] == [
        "client_credentials",
        "refresh_token",
        "client_credentials",
    ]


def test_a_401_renews_once_and_the_retry_succeeds(outbound_tls, oauth_token_server):
    auth = provider(oauth_token_server)
    assert call_resource(oauth_token_server, auth) == 200
    oauth_token_server.revoke_access_tokens()

    assert call_with_renew_once(oauth_token_server, auth) == 200
    assert oauth_token_server.token_requests == 2


def test_a_renewal_done_by_another_caller_is_reused(outbound_tls, oauth_token_server):
    store = MemoryTokenStore()
    first, second = provider(oauth_token_server, store), provider(oauth_token_server, store)
    assert call_resource(oauth_token_server, first) == 200
    assert call_resource(oauth_token_server, second) == 200
    oauth_token_server.revoke_access_tokens()

    assert call_with_renew_once(oauth_token_server, first) == 200
    assert call_with_renew_once(oauth_token_server, second) == 200
    assert oauth_token_server.token_requests == 2


def test_concurrent_callers_share_one_token_request(outbound_tls, oauth_token_server):
    store = MemoryTokenStore()
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def caller() -> None:
        auth = provider(oauth_token_server, store)
        barrier.wait()
        statuses.append(call_resource(oauth_token_server, auth))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200] * 8
    assert oauth_token_server.token_requests == 1


def test_fetch_for_test_reports_the_grant_without_the_token(outbound_tls, oauth_token_server):
    store = MemoryTokenStore()
    auth = provider(oauth_token_server, store)

    grant = auth.fetch_token_for_test()

    assert grant == {"token_type": "Bearer", "expires_in": 3600}
    assert store.token["access_token"] in auth.secrets()
    assert oauth_token_server.client_secret in auth.secrets()
    assert oauth_token_server.client_secret not in repr(auth)


def test_invalid_client_is_a_clear_error_without_the_secret(outbound_tls, oauth_token_server):
    auth = provider(oauth_token_server, client_secret=WRONG_SECRET)

    with pytest.raises(AuthError) as caught:
        auth.fetch_token_for_test()

    assert caught.value.stage == "token"
    assert caught.value.message == errors.AUTH_TOKEN_REJECTED.format(
        host=oauth_token_server.host, error="invalid_client"
    )
    assert WRONG_SECRET not in shown(caught.value)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            Response("<html>Bad gateway</html>", 502, content_type="text/html"),
            errors.AUTH_TOKEN_HTTP_STATUS.format(host="{host}", status=502),
        ),
        (
            Response("", 302, {"Location": "/oauth/token"}),
            errors.AUTH_TOKEN_REDIRECT.format(host="{host}", status=302),
        ),
        (Response("<html>hi</html>", 200), errors.AUTH_TOKEN_NOT_JSON),
        (
            Response('{"token_type": "Bearer"}', 200, content_type="application/json"),
            errors.AUTH_TOKEN_MISSING,
        ),
        (
            Response(
                '{"error": "invalid_request", "error_description": "bad ' + WRONG_SECRET + '"}',
                400,
                content_type="application/json",
            ),
            errors.AUTH_TOKEN_REJECTED.format(host="{host}", error="invalid_request"),
        ),
        (
            Response('{"error": "' + WRONG_SECRET + '"}', 400, content_type="application/json"),
            errors.AUTH_TOKEN_REJECTED.format(host="{host}", error="unknown error"),
        ),
    ],
)
def test_broken_token_endpoints_are_clear_errors(
    outbound_tls, tls_httpserver, oauth_token_server, response, message
):
    tls_httpserver.expect_request("/broken").respond_with_response(response)
    auth = provider(
        oauth_token_server,
        token_url=tls_httpserver.url_for("/broken"),
        client_secret=WRONG_SECRET,
    )

    with pytest.raises(AuthError) as caught:
        auth.fetch_token_for_test()

    host = oauth_token_server.host
    assert caught.value.message == message.format(host=host)
    assert WRONG_SECRET not in shown(caught.value)


def test_a_slow_token_endpoint_times_out(outbound_tls, tls_socket_server, oauth_token_server):
    outbound_tls.OUTBOUND_DEADLINE_SECONDS = 1.0

    def drip(sock):
        sock.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: yyyyyyyyyyyyyyyyyyyyyyy":
            sock.sendall(bytes([byte]))
            time.sleep(0.2)

    host = tls_socket_server(drip)
    auth = provider(oauth_token_server, token_url=f"https://{host}/token")

    with pytest.raises(OutboundError) as caught:
        auth.fetch_token_for_test()

    assert caught.value.stage == "timeout"
    assert oauth_token_server.client_secret not in shown(caught.value)


def test_the_token_endpoint_is_under_the_ssrf_rules(outbound_tls, oauth_token_server):
    outbound_tls.OUTBOUND_ALLOW_LOOPBACK = False

    with pytest.raises(OutboundError) as caught:
        provider(oauth_token_server).fetch_token_for_test()

    assert caught.value.stage == "ssrf"
    assert oauth_token_server.token_requests == 0


def test_the_token_endpoint_must_be_https(outbound_tls, oauth_token_server):
    auth = provider(oauth_token_server, token_url="http://127.0.0.1:9/token")

    with pytest.raises(OutboundError) as caught:
        auth.fetch_token_for_test()

    assert caught.value.message == errors.OUTBOUND_URL_NOT_HTTPS
