"""The process domain: processes, their steps, completion events and step runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from orchestration.validators import validate_event_name


class Process(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        DEPLOYED = "deployed", "Deployed"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    test_input = models.JSONField(
        default=dict, blank=True, help_text="The trigger input for test runs."
    )
    state = models.CharField(max_length=20, choices=State, default=State.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name_plural = "processes"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("process-editor", args=[self.pk])


class Step(models.Model):
    class Kind(models.TextChoices):
        CLOUD_FUNCTION = "cloud_function", "Cloud function"

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=200)
    key = models.SlugField(max_length=100, help_text="Unique in the process.")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=40, choices=Kind, default=Kind.CLOUD_FUNCTION)
    # Why the step cannot run yet; empty when it is complete.
    problems = models.JSONField(default=list, blank=True)
    # Bumped on every save of the step's configuration: the basis of edit conflicts.
    revision = models.PositiveIntegerField(default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["process", "key"], name="step_key_unique_in_process")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_complete(self) -> bool:
        return not self.problems


class CompletionEvent(models.Model):
    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=100, validators=[validate_event_name])
    description = models.CharField(max_length=300, blank=True)
    # A designer-pinned or hand-written payload, so mapping works without a live call.
    sample_payload = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["process", "name"], name="event_name_unique_in_process")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def sample_payload_json(self) -> str:
        import json

        return json.dumps(self.sample_payload, indent=2, ensure_ascii=False)


class StepRun(models.Model):
    """One execution of one step: who, when, the request as sent (masked) and what came back."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="runs")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_test = models.BooleanField(default=True)
    started_at = models.DateTimeField(auto_now_add=True)
    duration_ms = models.FloatField(default=0)
    outcome = models.CharField(max_length=20, choices=Outcome)
    # Masked: every secret in play was replaced before this was stored.
    request = models.JSONField(default=dict)
    captured = models.JSONField(null=True, blank=True)
    error_stage = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    event = models.ForeignKey(
        CompletionEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-pk"]
