"""The OAuth token cache in the database (issue 13, D3).

Fetching a token never holds a database transaction or lock across the network: the caller
that claims the lease fetches outside any transaction and stores with a compare-and-set on
the version; the others wait for its token. Threads stand in for callers; with the process
lock split per caller they stand in for separate processes, which only the database joins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django import db
from django.contrib.auth import get_user_model
from werkzeug import Request, Response

from cloudfunctions.connections import providers
from cloudfunctions.connections.providers import ConnectionTokenStore, auth_for
from cloudfunctions.connections.services import connection_update
from cloudfunctions.http.transport import OutboundRequest, send
from cloudfunctions.models import Connection
from tests.factories import OAuthConnectionFactory

CALLERS = 20
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _readers(sqlite_readers_do_not_fail_writers):
    pass


def oauth_connection(server, token_url: str | None = None) -> Connection:
    return OAuthConnectionFactory(
        base_url=server.resource_url.removesuffix("/api/resource"),
        client_id=server.client_id,
        client_secret=server.client_secret,
        token_url=token_url or server.token_url,
    )


def call_resource(server, connection_pk: int) -> int:
    # A fresh row and provider per call, as a web request or a worker would have.
    provider = auth_for(Connection.objects.get(pk=connection_pk))
    request = provider.apply(OutboundRequest("GET", server.resource_url))
    return send(request, allowed_hosts={server.host}).status


def in_threads(count: int, function) -> list:
    barrier = threading.Barrier(count)
    outcomes: list = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(function())
        except Exception as exc:  # surfaced by the caller's assertion, not lost in the thread
            outcomes.append(exc)
        finally:
            db.connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.fixture(params=["threads of one process", "as separate processes"])
def callers_are(request, monkeypatch):
    if request.param == "as separate processes":
        if db.connection.vendor == "sqlite":
            # The test database is SQLite's shared-cache in-memory one, whose table locks fail
            # at once ("database table is locked") where a file database waits; separate
            # processes on a file database are test_processes_on_a_sqlite_file_... below.
            pytest.skip("threads without a common lock need PostgreSQL or a database file")
        # No thread lock in common: only the database lease keeps them to one fetch.
        monkeypatch.setattr(providers, "_process_lock", lambda pk: threading.Lock())
    return request.param


def _twenty_callers_one_token_request(server) -> None:
    connection = oauth_connection(server)

    statuses = in_threads(CALLERS, lambda: call_resource(server, connection.pk))

    assert statuses == [200] * CALLERS
    assert server.token_requests == 1
    (access_token,) = server.access_tokens
    assert ConnectionTokenStore(connection.pk).load().token["access_token"] == access_token


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_callers_cause_one_token_request(
    outbound_tls, oauth_token_server, callers_are
):
    _twenty_callers_one_token_request(oauth_token_server)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_callers_cause_one_token_request_on_postgresql(
    outbound_tls, oauth_token_server, callers_are
):
    if db.connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: CI runs the suite again with DATABASE_URL set to it")
    _twenty_callers_one_token_request(oauth_token_server)


def test_processes_on_a_sqlite_file_cause_one_token_request(
    oauth_token_server, tls_ca_bundle, tmp_path
):
    # Five processes of four threads on one database file, with the production settings
    # (20 s busy timeout, IMMEDIATE transactions): only the database joins the processes.
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "OUTBOUND_ALLOW_LOOPBACK": "true",
        "OUTBOUND_CA_BUNDLE": tls_ca_bundle,
    }

    def run(*arguments: str) -> str:
        command = [sys.executable, *arguments]
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    run("manage.py", "migrate", "--no-input", "-v", "0")
    server = oauth_token_server
    base_url = server.resource_url.removesuffix("/api/resource")
    setup = ("setup", server.client_id, server.client_secret, server.token_url, base_url)
    pk = run("-m", "tests.cloudfunctions.token_callers", *setup).strip()
    go = tmp_path / "go"
    call = ("-m", "tests.cloudfunctions.token_callers", "call", pk, server.resource_url)
    processes = [
        subprocess.Popen(
            [sys.executable, *call, server.host, str(go), "4"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    for _ in range(1800):  # every process set up and waiting (a generous 180 s bound)
        if len(list(tmp_path.glob("go.ready.*"))) == len(processes):
            break
        time.sleep(0.1)
    go.touch()  # all at once
    statuses = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-2000:]
        statuses += json.loads(out.strip().splitlines()[-1])

    assert statuses == [200] * CALLERS
    assert server.token_requests == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_takes_writes_while_a_token_fetch_is_slow(
    outbound_tls, tls_httpserver, oauth_token_server
):
    reached, release = threading.Event(), threading.Event()

    def slow_token_endpoint(request: Request) -> Response:
        reached.set()
        release.wait(30)
        return oauth_token_server._token(request)

    tls_httpserver.expect_request("/slow/token").respond_with_handler(slow_token_endpoint)
    connection = oauth_connection(oauth_token_server, tls_httpserver.url_for("/slow/token"))
    fetching = threading.Thread(
        target=lambda: in_threads(1, lambda: call_resource(oauth_token_server, connection.pk))
    )
    fetching.start()
    try:
        assert reached.wait(30), "the token endpoint was never called"
        # Another user signs up meanwhile: before, this waited for the whole fetch (up to
        # SQLite's 20 s lock timeout, then "database is locked").
        (written,) = in_threads(1, lambda: get_user_model().objects.create(username="meanwhile").pk)
        assert isinstance(written, int), written
        assert not release.is_set() and fetching.is_alive()  # the fetch was still going on
    finally:
        release.set()
        fetching.join(30)
    assert oauth_token_server.token_requests == 1
    assert ConnectionTokenStore(connection.pk).load().token is not None


@pytest.mark.django_db
def test_a_claim_excludes_others_until_it_lapses_or_a_token_is_stored():
    store = ConnectionTokenStore(OAuthConnectionFactory().pk)
    version = store.load().version

    assert store.claim(version, 60)
    assert not store.claim(version, 60)  # another caller waits
    assert store.save({"access_token": "first"}, version)
    assert not store.save({"access_token": "late"}, version)  # compare-and-set
    assert store.load().token == {"access_token": "first"}

    version = store.load().version
    assert store.claim(version, -1)  # a caller that died holding the lease...
    assert store.claim(version, 60)  # ...holds it no longer once it lapses
    store.release(version)
    assert store.claim(version, 60)


@pytest.mark.django_db
def test_a_token_fetched_before_the_settings_changed_is_not_stored(admin_user):
    connection = OAuthConnectionFactory()
    store = ConnectionTokenStore(connection.pk)
    version = store.load().version
    assert store.claim(version, 60)  # a fetch with the old client secret is on the network

    connection_update(
        connection=connection,
        actor=admin_user,
        fields={"token_url": "https://auth.example.com/token"},
        secrets={"client_secret": "SECRET-MARKER-new-client-secret"},
    )

    assert not store.save({"access_token": "fetched-with-the-old-secret"}, version)
    assert store.load().token is None
