"""The process domain: processes, their steps, completion events and step runs."""

from __future__ import annotations

import uuid

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
    # A deployed version is a frozen copy of its draft: same tables, never edited again.
    version_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="versions"
    )
    version_number = models.PositiveIntegerField(null=True, blank=True)
    live_version = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # sha256 of the webhook token; the token itself is shown once and never stored.
    webhook_token_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name_plural = "processes"
        # The Process designers role: granted to its group by migration 0006.
        permissions = [("design_processes", "Can design, test, deploy and run processes")]
        constraints = [
            models.UniqueConstraint(
                fields=["version_of", "version_number"], name="version_number_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("process-editor", args=[self.pk])

    @property
    def is_frozen(self) -> bool:
        return self.version_of_id is not None


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
    max_attempts = models.PositiveSmallIntegerField(
        default=3, help_text="Attempts in deployed runs, retries included."
    )
    # What starts the step (see orchestration.processes.routes): "" the previous step's
    # completion event, as a straight list runs; "start" the process start; "event:<name>".
    starts_on = models.CharField(max_length=110, blank=True, default="")
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


class Run(models.Model):
    """One execution of a deployed version, on background workers."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        # Waiting out a retry's delay with no worker held: a task is scheduled for retry_at.
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Trigger(models.TextChoices):
        UI = "ui", "Run now"
        WEBHOOK = "webhook", "Webhook"
        COMMAND = "command", "Command"
        RERUN = "rerun", "Re-run"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.RETRYING)
    CLAIMABLE = (Status.QUEUED, Status.RETRYING)

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="version_runs")
    # Unique across databases (ids restart in each): its steps' idempotency keys derive from it.
    key = models.UUIDField(default=uuid.uuid4, editable=False)
    trigger = models.CharField(max_length=20, choices=Trigger)
    input = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status, default=Status.QUEUED)
    # Payloads of the completion events emitted so far, by event name.
    events = models.JSONField(default=dict, blank=True)
    next_position = models.PositiveIntegerField(default=0)
    # The attempt the step at next_position makes next, and when a waiting retry is due.
    attempt = models.PositiveSmallIntegerField(default=1)
    retry_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker's last sign of life: a running run without one for long has lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["process", "status"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]

    def get_absolute_url(self) -> str:
        return reverse("run-detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def first_rerun(self) -> Run | None:
        """The run started to re-run this one from its failed step, if any."""
        return Run.objects.filter(rerun_of=self).order_by("pk").first()


class StepRun(models.Model):
    """One execution of one step: who, when, the request as sent (masked) and what came back."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # Never reached: the event it starts on was not emitted in this run.
        SKIPPED = "skipped", "Skipped"

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="runs")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_test = models.BooleanField(default=True)
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.CASCADE, related_name="step_runs"
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    # Set on a failed attempt that is retried: the wait before the next one, and the
    # upstream's Retry-After when it gave one.
    retry_delay_s = models.FloatField(null=True, blank=True)
    retry_after_s = models.FloatField(null=True, blank=True)
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

    @property
    def captured_json(self) -> str:
        import json

        return json.dumps(self.captured, indent=2, ensure_ascii=False)
