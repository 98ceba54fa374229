"""A wrong or rotated-away FIELD_ENCRYPTION_KEY: a clear error, never ciphertext as credential."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection as db

from cloudfunctions import secrets
from cloudfunctions.connections.probe import connection_test_run
from cloudfunctions.models import Connection
from cloudfunctions.step.execution import cloud_function_execute
from tests.factories import (
    MARKERS,
    AmazonConnectionFactory,
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    OAuthConnectionFactory,
)

pytestmark = pytest.mark.django_db


def _api_key(server):
    return ApiKeyConnectionFactory(base_url=server.url_for("/api").rstrip("/"))


def _api_key_in_query(server):
    return ApiKeyConnectionFactory(
        base_url=server.url_for("/api").rstrip("/"), api_key_location="query", api_key_name="k"
    )


def _oauth(server):
    return OAuthConnectionFactory(
        base_url=server.url_for("/api").rstrip("/"), token_url=server.url_for("/oauth/token")
    )


def _amazon(server):
    return AmazonConnectionFactory()


KINDS = [_api_key, _api_key_in_query, _oauth, _amazon]
WRONG_KEYS = {
    "unknown key": lambda old: Fernet.generate_key().decode(),
    "rotated away": lambda old: [Fernet.generate_key().decode()],
}


@pytest.fixture
def everything_served(outbound_tls, tls_httpserver, settings):
    settings.AMAZON_CONNECT_ENDPOINT_OVERRIDE = tls_httpserver.url_for("/aws").rstrip("/")
    tls_httpserver.expect_request(re.compile(".*")).respond_with_json({"ok": True})
    return tls_httpserver


@pytest.mark.parametrize("wrong", WRONG_KEYS, ids=list(WRONG_KEYS))
@pytest.mark.parametrize("make", KINDS, ids=[k.__name__ for k in KINDS])
def test_execution_stops_at_secrets(
    everything_served, encryption_keys, settings, scan, make, wrong
):
    connection = make(everything_served)
    cf = CloudFunctionFactory(connection=connection, method="GET", uri='"/v1/x"', body="")
    encryption_keys(WRONG_KEYS[wrong](settings.FIELD_ENCRYPTION_KEY))
    cf = type(cf).objects.select_related("connection").get(pk=cf.pk)
    result = cloud_function_execute(cloud_function=cf, context={})
    assert result.error_stage == "secrets"
    assert result.error_message == secrets.SECRET_UNDECRYPTABLE
    assert not everything_served.log  # nothing sent: no ciphertext went out as a credential
    assert scan("result", [result.request, result.error_message]) == 0


@pytest.mark.parametrize("make", KINDS, ids=[k.__name__ for k in KINDS])
def test_connection_test_stops_at_secrets(
    everything_served, encryption_keys, admin_user, scan, make
):
    connection = make(everything_served)
    encryption_keys(Fernet.generate_key().decode())
    connection = Connection.objects.get(pk=connection.pk)
    result = connection_test_run(connection=connection, actor=admin_user)
    assert not result.ok and result.summary == secrets.SECRET_UNDECRYPTABLE
    assert not everything_served.log
    assert scan("summary", result.summary) == 0


def _raw(pk):
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT secret_access_key, api_key_value, client_secret, oauth_token "
            "FROM cloudfunctions_connection WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()


def test_reencrypt_secrets_moves_every_secret_to_the_new_key(encryption_keys, capsys):
    a, b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    encryption_keys(a)
    made = [ApiKeyConnectionFactory(), OAuthConnectionFactory(), AmazonConnectionFactory()]
    oauth = Connection.objects.get(pk=made[1].pk)
    oauth.oauth_token = '{"access_token": "SECRET-MARKER-token-e41a"}'
    oauth.save()
    encryption_keys([b, a])
    call_command("reencrypt_secrets")
    assert "3 connection(s)" in capsys.readouterr().out
    encryption_keys(b)  # key A is gone: every secret still opens
    stored = {c.pk: c for c in Connection.objects.all()}
    assert stored[made[0].pk].api_key_value == MARKERS["api_key_value"]
    assert stored[made[1].pk].client_secret == MARKERS["client_secret"]
    assert stored[made[1].pk].oauth_token == '{"access_token": "SECRET-MARKER-token-e41a"}'
    assert stored[made[2].pk].secret_access_key == MARKERS["secret_access_key"]


def test_reencrypt_secrets_refuses_rows_it_cannot_open(encryption_keys):
    lost, a, b = (Fernet.generate_key().decode() for _ in range(3))
    encryption_keys(lost)
    orphan = ApiKeyConnectionFactory()
    encryption_keys(a)
    fine = ApiKeyConnectionFactory()
    before = _raw(orphan.pk)
    encryption_keys([b, a])
    with pytest.raises(CommandError) as refused:
        call_command("reencrypt_secrets")
    assert f"{orphan.pk} “{orphan.name}” (api_key_value)" in str(refused.value)
    assert _raw(orphan.pk) == before  # left exactly as it was
    encryption_keys(b)
    assert Connection.objects.get(pk=fine.pk).api_key_value == MARKERS["api_key_value"]
    encryption_keys(lost)
    assert Connection.objects.get(pk=orphan.pk).api_key_value == MARKERS["api_key_value"]
