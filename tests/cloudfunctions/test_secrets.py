"""Secrets are encrypted at rest, write-only, and never shown: each claim has a test here."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.db import connection as db
from django.urls import reverse

from cloudfunctions import secrets
from cloudfunctions.demo import DEMO_USERS
from cloudfunctions.models import Connection
from tests.factories import (
    MARKERS,
    AmazonConnectionFactory,
    ApiKeyConnectionFactory,
    OAuthConnectionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def all_kinds():
    return [ApiKeyConnectionFactory(), OAuthConnectionFactory(), AmazonConnectionFactory()]


def _raw_columns():
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT secret_access_key, api_key_value, client_secret FROM cloudfunctions_connection"
        )
        return [value for row in cursor.fetchall() for value in row if value]


def test_secrets_are_encrypted_at_rest(all_kinds):
    stored = _raw_columns()
    assert len(stored) == 3
    for marker in MARKERS.values():
        assert not any(marker in value for value in stored)
    assert Connection.objects.get(pk=all_kinds[0].pk).api_key_value == MARKERS["api_key_value"]


def test_exports_leave_secrets_out(all_kinds):
    from io import StringIO

    from django.core.management import call_command

    from cloudfunctions.connections.providers import ConnectionTokenStore

    ConnectionTokenStore(all_kinds[1].pk).save(
        {"access_token": "TOKEN-MARKER-1", "expires_at": 1}, 0
    )
    out = StringIO()
    call_command("dumpdata", "cloudfunctions", stdout=out)
    exported = out.getvalue()
    assert MARKERS["api_key_value"] not in exported  # it was, decrypted, before
    for secret in [*MARKERS.values(), "TOKEN-MARKER-1", *_raw_columns()]:
        assert secret not in exported
    assert '"base_url": "https://' in exported  # the rest is exported


def test_a_dump_of_the_whole_database_works_and_leaves_secrets_out(all_kinds, settings):
    """`manage.py dumpdata`, as the README's backups say, on a migrated database with demo data."""
    import json
    from io import StringIO

    from django.core.management import call_command

    from cloudfunctions.connections.providers import ConnectionTokenStore

    settings.DEBUG = True  # demo data is refused outside development
    call_command("seed_demo")
    ConnectionTokenStore(all_kinds[1].pk).save(
        {"access_token": "TOKEN-MARKER-2", "expires_at": 1}, 0
    )
    out = StringIO()
    call_command("dumpdata", stdout=out)  # no arguments: every app, django_rq's among them
    exported = out.getvalue()
    models = {row["model"] for row in json.loads(exported)}
    assert {"cloudfunctions.connection", "orchestration.process", "auth.user"} <= models
    assert not any(model.startswith("django_rq.") for model in models)  # it has no table
    secrets_known = [*MARKERS.values(), "TOKEN-MARKER-2", "demo-key-not-a-real-secret"]
    for secret in [*secrets_known, *_raw_columns(), settings.SECRET_KEY]:
        assert secret not in exported
    assert not any(password in exported for _, password, _ in DEMO_USERS)


def test_repr_and_str_do_not_show_secrets(all_kinds):
    for connection in all_kinds:
        for text in (repr(connection), str(connection), str(connection.__dict__.keys())):
            assert not any(marker in text for marker in MARKERS.values())


def test_a_wrong_key_gives_a_clear_error_never_the_ciphertext(all_kinds, encryption_keys, settings):
    right_key = settings.FIELD_ENCRYPTION_KEY
    encryption_keys(Fernet.generate_key().decode())
    connection = Connection.objects.get(pk=all_kinds[0].pk)
    assert isinstance(connection.api_key_value, secrets.UndecryptableSecret)
    with pytest.raises(secrets.SecretDecryptionError) as error:
        secrets.reveal(connection.api_key_value)
    assert str(error.value) == secrets.SECRET_UNDECRYPTABLE
    # Saving the row again keeps the original ciphertext, so restoring the key restores the secret.
    connection.save()
    encryption_keys(right_key)
    assert Connection.objects.get(pk=connection.pk).api_key_value == MARKERS["api_key_value"]


def test_rotation_reads_with_old_key_and_writes_with_new(all_kinds, encryption_keys, settings):
    old = settings.FIELD_ENCRYPTION_KEY
    old = old if isinstance(old, str) else old[0]
    new = Fernet.generate_key().decode()
    encryption_keys([new, old])
    connection = Connection.objects.get(pk=all_kinds[0].pk)
    assert connection.api_key_value == MARKERS["api_key_value"]
    connection.save()
    encryption_keys(new)  # the old key is gone: the re-saved secret still opens
    assert Connection.objects.get(pk=all_kinds[0].pk).api_key_value == MARKERS["api_key_value"]


def test_no_page_or_log_shows_a_secret(client, superuser, admin_user, all_kinds, caplog):
    caplog.set_level(logging.DEBUG)
    pages = []
    client.force_login(admin_user)
    pages.append(client.get(reverse("connection-list")))
    for connection in all_kinds:
        for name in ("connection-detail", "connection-edit", "connection-delete"):
            pages.append(client.get(reverse(name, args=[connection.pk])))
        # A refused form re-renders what was typed, except the secrets.
        pages.append(
            client.post(
                reverse("connection-edit", args=[connection.pk]),
                {"name": "", "provider": connection.provider, **MARKERS},
            )
        )
    client.force_login(superuser)
    pages.append(client.get("/admin/cloudfunctions/connection/"))
    for connection in all_kinds:
        pages.append(client.get(f"/admin/cloudfunctions/connection/{connection.pk}/change/"))
    for response in pages:
        assert response.status_code in (200, 302), response
        html = response.content.decode()
        for marker in MARKERS.values():
            assert marker not in html, (response.request["PATH_INFO"], marker)
    for record in caplog.records:
        for marker in MARKERS.values():
            assert marker not in record.getMessage()
