"""Build a connection's auth provider, with OAuth 2.0 tokens cached (encrypted) in the database."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from cloudfunctions.connections.auth import AuthProvider
from cloudfunctions.connections.auth.api_key import ApiKeyAuth
from cloudfunctions.connections.auth.aws import AwsSigV4Auth
from cloudfunctions.connections.auth.oauth2 import CachedToken, OAuth2ClientCredentials
from cloudfunctions.models import Connection
from cloudfunctions.secrets import reveal

_process_locks: dict[int, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(pk: int) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(pk, threading.Lock())


class ConnectionTokenStore:
    """The token cache shared by every process of the app: one encrypted column per connection.

    Every write is one short UPDATE that compares the version first, so no database lock is
    ever held while a token is fetched: the caller that claims the lease fetches, the others
    (threads of this process on a thread lock, other processes by polling) wait for its token.
    """

    def __init__(self, connection_pk: int):
        self.pk = connection_pk

    def __repr__(self) -> str:
        return f"<ConnectionTokenStore {self.pk}>"

    def load(self) -> CachedToken:
        row = (
            Connection.objects.filter(pk=self.pk)
            .values_list("oauth_token", "oauth_token_version")
            .first()
        )
        if row is None:
            return CachedToken(None, 0)
        raw, version = row
        # A token cached under a key since retired is a miss: refetching it needs no one, while
        # raising would fail every call with a message about secrets no one can re-enter.
        return CachedToken(json.loads(raw) if isinstance(raw, str) and raw else None, version)

    def claim(self, version: int, seconds: float) -> bool:
        now = timezone.now()
        free = Q(oauth_token_lease_until__isnull=True) | Q(oauth_token_lease_until__lt=now)
        rows = Connection.objects.filter(free, pk=self.pk, oauth_token_version=version)
        return rows.update(oauth_token_lease_until=now + timedelta(seconds=seconds)) == 1

    def save(self, token: dict, version: int) -> bool:
        rows = Connection.objects.filter(pk=self.pk, oauth_token_version=version)
        stored = rows.update(
            oauth_token=json.dumps(token),
            oauth_token_version=F("oauth_token_version") + 1,
            oauth_token_lease_until=None,
        )
        return stored == 1

    def release(self, version: int) -> None:
        rows = Connection.objects.filter(pk=self.pk, oauth_token_version=version)
        rows.update(oauth_token_lease_until=None)

    def lock(self) -> threading.Lock:
        return _process_lock(self.pk)


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
