"""Writes for connections (HackSoft style: <entity>_<action>, keyword-only)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, ProtectedError
from django.utils import timezone

from cloudfunctions.connections import messages
from cloudfunctions.models import Connection, ConnectionAuditEntry

# Changing any of these makes a cached OAuth 2.0 token stale.
OAUTH_TOKEN_INPUTS = {
    "provider",
    "base_url",
    "auth_type",
    "client_id",
    "client_secret",
    "scopes",
    "token_url",
    "refresh_url",
}


class ConnectionInUse(Exception):
    def __init__(self, step_names: list[str], versions: list[str] = ()):
        self.step_names = step_names
        message = messages.CONNECTION_IN_USE.format(
            count=len(step_names), steps=", ".join(step_names)
        )
        if versions:
            versions = ", ".join(versions)
            message += " " + messages.CONNECTION_IN_DEPLOYED_VERSIONS.format(versions=versions)
        super().__init__(message)


def _apply_secrets(connection: Connection, secrets: dict[str, str | None]) -> None:
    now = timezone.now().isoformat()
    for name, value in secrets.items():
        setattr(connection, name, value)
        if value is None:
            connection.secrets_changed_at.pop(name, None)
        else:
            connection.secrets_changed_at[name] = now


def _audit(connection: Connection, *, actor, action: str, fields=(), detail: str = "") -> None:
    ConnectionAuditEntry.objects.create(
        connection=connection if action != ConnectionAuditEntry.Action.DELETED else None,
        connection_name=connection.name,
        actor=actor,
        action=action,
        fields=sorted(fields),
        detail=detail[:500],
    )


@transaction.atomic
def connection_create(*, actor, fields: dict, secrets: dict[str, str | None]) -> Connection:
    """Create a connection from validated values and record who did it."""
    connection = Connection(**fields)
    _apply_secrets(connection, secrets)
    connection.full_clean()
    connection.save()
    changed = [name for name, value in fields.items() if value] + [
        name for name, value in secrets.items() if value
    ]
    _audit(connection, actor=actor, action=ConnectionAuditEntry.Action.CREATED, fields=changed)
    return connection


@transaction.atomic
def connection_update(
    *, connection: Connection, actor, fields: dict, secrets: dict[str, str | None]
) -> Connection:
    """Apply validated changes; record which fields changed, never their values."""
    # Compare with the stored row: a ModelForm has already copied its data onto the instance.
    stored = Connection.objects.defer(*Connection.SECRET_FIELDS).get(pk=connection.pk)
    changed = {name for name, value in fields.items() if getattr(stored, name) != value}
    changed |= set(secrets)
    for name, value in fields.items():
        setattr(connection, name, value)
    if changed & OAUTH_TOKEN_INPUTS:
        secrets = {**secrets, "oauth_token": None}
    _apply_secrets(connection, secrets)
    connection.full_clean()
    # Only what this form changed: a token a worker cached meanwhile must survive.
    connection.save(update_fields=[*fields, *secrets, "secrets_changed_at", "updated_at"])
    if "oauth_token" in secrets:
        # A token being fetched under the old settings must not be stored over the clearing.
        Connection.objects.filter(pk=connection.pk).update(
            oauth_token_version=F("oauth_token_version") + 1, oauth_token_lease_until=None
        )
    changed.discard("oauth_token")
    if changed:
        _audit(connection, actor=actor, action=ConnectionAuditEntry.Action.CHANGED, fields=changed)
    return connection


@transaction.atomic
def connection_delete(*, connection: Connection, actor) -> None:
    """Delete a connection no step uses; refuse otherwise, naming the steps."""
    _refuse_if_in_use(connection)
    _audit(connection, actor=actor, action=ConnectionAuditEntry.Action.DELETED)
    try:
        connection.delete()
    except ProtectedError:  # a step started to use it since the check
        _refuse_if_in_use(connection)
        raise


def _refuse_if_in_use(connection: Connection) -> None:
    users = list(
        connection.cloud_functions.select_related("step__process").order_by("step__process__name")
    )
    if users:
        versions = sorted(
            {str(cf.step.process) for cf in users if cf.step.process.version_of_id is not None}
        )
        raise ConnectionInUse(
            [f"{cf.step.process.name} › {cf.step.name}" for cf in users], versions
        )


def connection_record_test(*, connection: Connection, actor, ok: bool, summary: str) -> None:
    """Remember the outcome of a Test connection and add it to the audit trail."""
    connection.last_tested_at = timezone.now()
    connection.last_test_ok = ok
    connection.last_test_summary = summary[:500]
    connection.save(update_fields=["last_tested_at", "last_test_ok", "last_test_summary"])
    _audit(connection, actor=actor, action=ConnectionAuditEntry.Action.TESTED, detail=summary)
