from __future__ import annotations

from django.contrib import admin

from orchestration.models import CompletionEvent, Process, Step, StepRun


class FrozenVersionsReadOnly:
    """A deployed version never changes, here too: workers cache it, runs refer to it.

    ``process_of(obj)`` names the process an object belongs to (an inline receives it).
    """

    # Relations that may only point into drafts: field name -> the lookup to its process.
    draft_relations: dict[str, str] = {}

    def process_of(self, obj) -> Process:
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.draft_relations:
            drafts = {f"{self.draft_relations[db_field.name]}version_of__isnull": True}
            kwargs["queryset"] = db_field.related_model._default_manager.filter(**drafts)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _frozen(self, obj) -> bool:
        return obj is not None and self.process_of(obj).is_frozen

    def has_change_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_delete_permission(request, obj)


class StepInline(FrozenVersionsReadOnly, admin.TabularInline):
    model = Step
    extra = 0
    fields = ["position", "name", "key", "kind"]

    def has_add_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_add_permission(request, obj)


@admin.register(Process)
class ProcessAdmin(FrozenVersionsReadOnly, admin.ModelAdmin):
    list_display = ["name", "state", "updated_at"]
    search_fields = ["name"]
    # Deploy, rollback and token rotation own these; an edit here would bypass them.
    readonly_fields = ["version_of", "version_number", "live_version", "webhook_token_hash"]
    inlines = [StepInline]


@admin.register(CompletionEvent)
class CompletionEventAdmin(FrozenVersionsReadOnly, admin.ModelAdmin):
    list_display = ["name", "process"]
    list_select_related = ["process"]

    draft_relations = {"process": ""}

    def process_of(self, obj) -> Process:
        return obj.process


@admin.register(StepRun)
class StepRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "step", "outcome", "is_test", "duration_ms"]
    list_filter = ["outcome", "is_test"]
    list_select_related = ["step"]
