"""Run by test_token_store in separate processes on one SQLite database file.

``setup <client_id> <client_secret> <token_url> <base_url>`` creates the OAuth connection and
prints its pk; ``call <pk> <resource_url> <host> <go_file> <threads>`` writes go_file.ready.<pid>, waits for
go_file, then
calls the resource from that many threads and prints their statuses as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import django


def _setup(client_id: str, client_secret: str, token_url: str, base_url: str) -> None:
    from cloudfunctions.models import Connection

    connection = Connection.objects.create(
        name="oauth",
        provider=Connection.Provider.CUSTOM,
        auth_type=Connection.AuthType.OAUTH2,
        base_url=base_url,
        client_id=client_id,
        client_secret=client_secret,  # encrypted by its field
        token_url=token_url,
    )
    print(connection.pk)


def _call(pk: str, url: str, host: str, go: str, threads: str) -> None:
    from django import db

    from cloudfunctions.connections.providers import auth_for
    from cloudfunctions.http.transport import OutboundRequest, send
    from cloudfunctions.models import Connection

    statuses: list = []

    def call() -> None:
        try:
            provider = auth_for(Connection.objects.get(pk=int(pk)))
            request = provider.apply(OutboundRequest("GET", url))
            statuses.append(send(request, allowed_hosts={host}).status)
        except Exception as exc:
            statuses.append(repr(exc))
        finally:
            db.connection.close()

    with open(f"{go}.ready.{os.getpid()}", "w"):
        pass  # set up and waiting
    while not os.path.exists(go):
        time.sleep(0.01)
    callers = [threading.Thread(target=call) for _ in range(int(threads))]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(60)
    print(json.dumps(statuses))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestration.settings")
    django.setup()
    command, *arguments = sys.argv[1:]
    {"setup": _setup, "call": _call}[command](*arguments)
