"""Build a connection's auth provider, with OAuth 2.0 tokens cached (encrypted) in the database."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from typing import Any

from django.db import transaction

from cloudfunctions.connections.auth import AuthProvider
from cloudfunctions.connections.auth.api_key import ApiKeyAuth
from cloudfunctions.connections.auth.aws import AwsSigV4Auth
from cloudfunctions.connections.auth.oauth2 import OAuth2ClientCredentials
from cloudfunctions.models import Connection
from cloudfunctions.secrets import reveal

_process_locks: dict[int, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(pk: int) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(pk, threading.Lock())


class ConnectionTokenStore:
    """The token cache shared by every process of the app: one encrypted column per connection.

    Concurrent callers queue on a lock (a thread lock here, plus a row lock on databases
    that have them), so only the first of them calls the token endpoint.
    """

    def __init__(self, connection_pk: int):
        self.pk = connection_pk

    def __repr__(self) -> str:
        return f"<ConnectionTokenStore {self.pk}>"

    def load(self) -> dict[str, Any] | None:
        row = Connection.objects.filter(pk=self.pk).values_list("oauth_token", flat=True).first()
        # A token cached under a key since retired is a miss: refetching it needs no one, while
        # raising would fail every call with a message about secrets no one can re-enter.
        return json.loads(row) if isinstance(row, str) and row else None

    def save(self, token: dict[str, Any]) -> None:
        connection = Connection(pk=self.pk, oauth_token=json.dumps(token))
        connection.save(update_fields=["oauth_token"])

    @contextmanager
    def lock(self):
        with _process_lock(self.pk), transaction.atomic():
            Connection.objects.select_for_update().filter(pk=self.pk).values_list("pk").first()
            yield self


def auth_for(connection: Connection) -> AuthProvider:
    """Return the provider that authenticates requests made through the connection."""
    if connection.is_amazon_connect:
        return AwsSigV4Auth(
            access_key_id=connection.access_key_id,
            secret_access_key=reveal(connection.secret_access_key),
            region=connection.region,
        )
    if connection.auth_type == Connection.AuthType.OAUTH2:
        return OAuth2ClientCredentials(
            client_id=connection.client_id,
            client_secret=reveal(connection.client_secret),
            token_url=connection.token_url,
            refresh_url=connection.refresh_url or None,
            scopes=connection.scopes.split(),
            store=ConnectionTokenStore(connection.pk),
        )
    return ApiKeyAuth(
        name=connection.api_key_name,
        value=reveal(connection.api_key_value),
        location=connection.api_key_location or "header",
    )
