"""Connections (where a cloud function calls, and with which credentials) and cloud functions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from cloudfunctions import amazon_connect
from cloudfunctions.http.transport import OutboundError, host_of
from cloudfunctions.secrets import SecretField
from cloudfunctions.validators import validate_https_url
from orchestration.models import CompletionEvent, Step


def shown_host(url: str | None) -> str:
    """Return the host of a URL as the transport names it; "" when it names none."""
    try:
        return host_of(url) if url else ""
    except OutboundError:
        return ""


class Connection(models.Model):
    class Provider(models.TextChoices):
        AMAZON_CONNECT = "amazon_connect", "Amazon Connect"
        CUSTOM = "custom", "Custom"

    class AuthType(models.TextChoices):
        API_KEY = "api_key", "API key"
        OAUTH2 = "oauth2", "OAuth 2.0"

    class ApiKeyLocation(models.TextChoices):
        HEADER = "header", "Header"
        QUERY = "query", "Query"

    # The write-only fields, with the labels the UI uses for them.
    SECRET_FIELDS = {
        "secret_access_key": "Secret access key",
        "api_key_value": "Value",
        "client_secret": "Client secret",
    }

    name = models.CharField("Connection name", max_length=200, unique=True)
    provider = models.CharField("Cloud provider", max_length=20, choices=Provider)

    # Amazon Connect
    region = models.CharField("Default region", max_length=40, blank=True)
    access_key_id = models.CharField("Access key ID", max_length=128, blank=True)
    secret_access_key = SecretField()

    # Custom
    base_url = models.CharField(
        "Base URL", max_length=500, blank=True, validators=[validate_https_url]
    )
    auth_type = models.CharField("Authentication type", max_length=20, choices=AuthType, blank=True)
    api_key_location = models.CharField(
        "Location", max_length=10, choices=ApiKeyLocation, blank=True
    )
    api_key_name = models.CharField("Name", max_length=200, blank=True)
    api_key_value = SecretField()
    client_id = models.CharField("Client ID", max_length=300, blank=True)
    client_secret = SecretField()
    scopes = models.CharField("Scopes", max_length=1000, blank=True)
    token_url = models.CharField(
        "Token URL", max_length=500, blank=True, validators=[validate_https_url]
    )
    refresh_url = models.CharField(
        "Refresh URL", max_length=500, blank=True, validators=[validate_https_url]
    )
    # The cached OAuth 2.0 token (JSON), shared by every process of the app. Written only by
    # compare-and-set on the version; the lease says one caller is fetching a token until then,
    # so the others wait for it without any database lock held across the network.
    oauth_token = SecretField()
    oauth_token_version = models.PositiveBigIntegerField(default=0, editable=False)
    oauth_token_lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    # field name -> ISO time the secret was last set; values are never kept here.
    secrets_changed_at = models.JSONField(default=dict, blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_summary = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # The Connection administrators role: granted to its group by migration 0002.
        permissions = [("manage_connections", "Can add, change, test and delete connections")]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Connection {self.pk}: {self.name!r} ({self.provider})>"

    def get_absolute_url(self) -> str:
        return reverse("connection-detail", args=[self.pk])

    @property
    def is_amazon_connect(self) -> bool:
        return self.provider == self.Provider.AMAZON_CONNECT

    @property
    def endpoint(self) -> str:
        """The base URL requests go to."""
        if self.is_amazon_connect:
            return amazon_connect.base_url(self.region)
        return self.base_url

    @property
    def host(self) -> str:
        """The host shown in lists and prompts; empty when the settings cannot give one."""
        try:
            return shown_host(self.endpoint)
        except ValueError:  # amazon_connect.UnknownRegion: a region botocore no longer lists
            return ""

    @property
    def auth_label(self) -> str:
        if self.is_amazon_connect:
            return "AWS SigV4"
        return self.get_auth_type_display()

    def secret_is_set(self, field: str) -> bool:
        return getattr(self, field) is not None


class ConnectionAuditEntry(models.Model):
    """Who did what to a connection, and when. Field names only, never values."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        CHANGED = "changed", "Changed"
        TESTED = "tested", "Tested"
        DELETED = "deleted", "Deleted"

    connection = models.ForeignKey(
        Connection, null=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    connection_name = models.CharField(max_length=200)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action)
    fields = models.JSONField(default=list, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]


class CloudFunction(models.Model):
    """A cloud-function step's request definition. Expressions keep their text as typed."""

    class Method(models.TextChoices):
        GET = "GET", "GET"
        POST = "POST", "POST"
        PUT = "PUT", "PUT"
        PATCH = "PATCH", "PATCH"
        DELETE = "DELETE", "DELETE"

    step = models.OneToOneField(Step, on_delete=models.CASCADE, related_name="cloud_function")
    name = models.CharField("Name", max_length=200, blank=True)
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.PROTECT, related_name="cloud_functions"
    )
    method = models.CharField("Method", max_length=10, choices=Method, default=Method.GET)
    uri = models.TextField("URI", blank=True)
    # Ordered rows of {"key": <CEL>, "value": <CEL>}.
    query_params = models.JSONField("Query parameters", default=list, blank=True)
    headers = models.JSONField("Headers", default=list, blank=True)

    class BodyMode(models.TextChoices):
        JSON = "json", "JSON"
        CEL = "cel", "CEL expression"

    # JSON is sent as written; a CEL body is an expression evaluating to a map or list,
    # so computed values are explicit rather than templated into text.
    body_mode = models.CharField(max_length=10, choices=BodyMode, default=BodyMode.JSON)
    body = models.TextField("Body", blank=True)
    # One emitter per event, so a later step's "events[name]" is never ambiguous.
    completion_event = models.OneToOneField(
        CompletionEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="emitter"
    )
    # Outcome routes beyond the completion event (its 2xx row), in order:
    # {"when": "404" | "4xx" | "error" …, "event": <name> or null to fail the run}.
    outcomes = models.JSONField("Outcomes", default=list, blank=True)
    # Optional CEL shaping the emitted event's payload; empty: the captured response.
    result = models.TextField("Result", blank=True)
    # Seconds this step's request may take, at most OUTBOUND_DEADLINE_SECONDS; empty: that.
    timeout_seconds = models.PositiveSmallIntegerField("Timeout", null=True, blank=True)
    # What the designer typed where the form refused it ({"new_event_name": "…"}): kept,
    # shown again with its problem on reload, and applied by the next Save that passes.
    draft = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name or self.step.name


def cloud_function_of(step: Step) -> CloudFunction | None:
    """Return the step's cloud function, or None before it is configured."""
    try:
        return step.cloud_function
    except CloudFunction.DoesNotExist:
        return None
