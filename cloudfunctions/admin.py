"""Superuser admin. Secret fields are not editable, so they never reach these pages."""

from __future__ import annotations

from django.contrib import admin

from cloudfunctions.models import CloudFunction, Connection, ConnectionAuditEntry
from orchestration.admin import FrozenVersionsReadOnly


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "auth_type", "host", "last_tested_at"]
    list_filter = ["provider", "auth_type"]
    search_fields = ["name", "base_url"]
    readonly_fields = ["secrets_changed_at", "last_tested_at", "last_test_ok", "last_test_summary"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*Connection.SECRET_FIELDS, "oauth_token")


@admin.register(ConnectionAuditEntry)
class ConnectionAuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "connection_name", "action", "actor"]
    list_filter = ["action"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CloudFunction)
class CloudFunctionAdmin(FrozenVersionsReadOnly, admin.ModelAdmin):
    list_display = ["__str__", "step", "connection", "method", "uri"]
    list_select_related = ["step", "connection"]

    draft_relations = {"step": "process__", "completion_event": "process__"}

    def process_of(self, obj):
        return obj.step.process
