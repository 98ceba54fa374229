"""Reads for connections."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from cloudfunctions.models import Connection


def connection_list(*, provider: str | None = None) -> QuerySet[Connection]:
    """Connections with the number of steps that use each."""
    # Secrets are not needed to list connections, so they are not even decrypted.
    qs = (
        Connection.objects.defer(*Connection.SECRET_FIELDS, "oauth_token")
        .annotate(used_by=Count("cloud_functions"))
        .order_by("name")
    )
    if provider:
        qs = qs.filter(provider=provider)
    return qs
