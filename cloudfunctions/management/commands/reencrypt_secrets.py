"""manage.py reencrypt_secrets: rewrite every stored secret with the first configured key."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from cloudfunctions.models import Connection
from cloudfunctions.secrets import UndecryptableSecret

# The cached OAuth token is encrypted the same way as the secrets a user enters.
ENCRYPTED_FIELDS = [*Connection.SECRET_FIELDS, "oauth_token"]


class Command(BaseCommand):
    help = (
        "Re-encrypt every connection secret with the first key of FIELD_ENCRYPTION_KEY, so "
        "older keys can then be removed. Rows a configured key cannot open are left as they are "
        "and reported."
    )

    def handle(self, *args, **options):
        rewritten = 0
        refused: list[str] = []
        for pk in Connection.objects.order_by("pk").values_list("pk", flat=True):
            with transaction.atomic():
                connection = Connection.objects.select_for_update().get(pk=pk)
                unreadable = [
                    name
                    for name in ENCRYPTED_FIELDS
                    if isinstance(getattr(connection, name), UndecryptableSecret)
                ]
                if unreadable:
                    refused.append(f"{connection.pk} “{connection.name}” ({', '.join(unreadable)})")
                    continue
                present = [name for name in ENCRYPTED_FIELDS if getattr(connection, name)]
                if present:
                    # Saving encrypts again, always with the first key.
                    connection.save(update_fields=present)
                    rewritten += 1
        self.stdout.write(f"Re-encrypted the secrets of {rewritten} connection(s).")
        if refused:
            raise CommandError(
                "No configured key opens these connections' secrets; they were left unchanged "
                "(restore the key they were written with, or enter the secrets again): "
                + "; ".join(refused)
            )
