"""Superuser admin. Secret fields are not editable, so they never reach these pages."""

from __future__ import annotations

from django.contrib import admin

from cloudfunctions.models import CloudFunction, Connection, ConnectionAuditEntry
from orchestration.admin import FrozenVersionsReadOnly


class ReadOnly:
    """Viewable, never written here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Connection)
class ConnectionAdmin(ReadOnly, admin.ModelAdmin):
    """Read-only: connections change through the app's pages (View on site), which clear a
    cached OAuth token when the host or client changes, refuse deleting one in use, check
    regions and header names, and record each change in the audit trail."""

    list_display = ["name", "provider", "auth_type", "host", "last_tested_at"]
    list_filter = ["provider", "auth_type"]
    search_fields = ["name", "base_url"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*Connection.SECRET_FIELDS, "oauth_token")


@admin.register(ConnectionAuditEntry)
class ConnectionAuditEntryAdmin(ReadOnly, admin.ModelAdmin):
    """A trail nobody rewrites, superusers included."""

    list_display = ["at", "connection_name", "action", "actor"]
    list_filter = ["action"]


@admin.register(CloudFunction)
class CloudFunctionAdmin(FrozenVersionsReadOnly, admin.ModelAdmin):
    list_display = ["__str__", "step", "connection", "method", "uri"]
    list_select_related = ["step", "connection"]

    draft_relations = {"step": "process__", "completion_event": "process__"}

    def process_of(self, obj):
        return obj.step.process
