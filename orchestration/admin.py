from __future__ import annotations

from django.contrib import admin

from orchestration.models import CompletionEvent, Process, Step, StepRun


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ["position", "name", "key", "kind"]


@admin.register(Process)
class ProcessAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "updated_at"]
    search_fields = ["name"]
    inlines = [StepInline]


@admin.register(CompletionEvent)
class CompletionEventAdmin(admin.ModelAdmin):
    list_display = ["name", "process"]
    list_select_related = ["process"]


@admin.register(StepRun)
class StepRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "step", "outcome", "is_test", "duration_ms"]
    list_filter = ["outcome", "is_test"]
    list_select_related = ["step"]
