"""The Cloud function tab's form: the request definition plus its Key/Value row formsets."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db.models import Q

from cloudfunctions.models import CloudFunction, Connection
from orchestration.models import CompletionEvent
from orchestration.validators import validate_event_name

NEW_EVENT = "__new__"


class RowForm(forms.Form):
    """One Key / Value row; both are CEL expressions kept exactly as typed."""

    key = forms.CharField(
        label="Key", required=False, strip=False, widget=forms.TextInput(attrs={"class": "cel"})
    )
    value = forms.CharField(
        label="Value", required=False, strip=False, widget=forms.TextInput(attrs={"class": "cel"})
    )


RowFormSet = forms.formset_factory(RowForm, extra=0, can_delete=True, can_order=True, max_num=50)


def rows_from_formset(formset) -> list[dict[str, str]]:
    """Return the kept rows in their chosen order, dropping deleted and empty ones."""
    rows = []
    for form in formset.ordered_forms if formset.can_order else formset.forms:
        data = form.cleaned_data
        if data.get("DELETE") or not (data.get("key") or data.get("value")):
            continue
        rows.append({"key": data.get("key", ""), "value": data.get("value", "")})
    return rows


def row_management_data(prefix: str, rows: list[dict[str, str]]) -> dict[str, str]:
    """Return POST data for a formset holding exactly these rows, in order."""
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data[f"{prefix}-{index}-key"] = row["key"]
        data[f"{prefix}-{index}-value"] = row["value"]
        data[f"{prefix}-{index}-ORDER"] = str(index + 1)
    return data


def row_formsets(data):
    """Return the query and header formsets bound to `data`.

    Never with the stored rows as `initial`: a formset then counts a posted row equal to its
    stored twin as an unchanged extra form, and drops it (the rows lost on a second Save).
    """
    return RowFormSet(data, prefix="query"), RowFormSet(data, prefix="headers")


FAIL_THE_RUN = "__fail__"
# The classes, the codes APIs answer as business outcomes, and no answer at all.
WHEN_CHOICES = [
    *[(c, c) for c in ("2xx", "3xx", "4xx", "5xx")],
    *[(c, c) for c in ("400", "401", "403", "404", "409", "410", "412", "422", "429")],
    *[(c, c) for c in ("500", "502", "503", "504")],
    ("error", "Connection error or timeout"),
]
OUTCOME_NEEDS_NAME = "Name the new completion event."


class OutcomeForm(forms.Form):
    """One Outcomes row: When an answer matches, emit a completion event or fail the run."""

    when = forms.ChoiceField(label="When", choices=WHEN_CHOICES)
    then = forms.ChoiceField(label="Completion event")
    new_event_name = forms.CharField(label="New event name", required=False, max_length=100)

    def __init__(self, *args, events=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["then"].choices = [
            (FAIL_THE_RUN, "Fail the run"),
            *[(name, name) for name in events],
            (NEW_EVENT, "Create a new event…"),
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("then") == NEW_EVENT:
            name = (cleaned.get("new_event_name") or "").strip()
            if not name:
                self.add_error("new_event_name", OUTCOME_NEEDS_NAME)
            else:
                try:
                    validate_event_name(name)
                except forms.ValidationError as exc:
                    self.add_error("new_event_name", exc)
        return cleaned


OutcomeFormSet = forms.formset_factory(OutcomeForm, extra=0, can_delete=True, max_num=20)


def outcomes_from_formset(formset) -> list[dict]:
    """Return the kept Outcomes rows in order: {"when", "event"}, event None to fail."""
    rows = []
    for form in formset.forms:
        data = form.cleaned_data
        if not data or data.get("DELETE"):
            continue
        then = data.get("then")
        event = data["new_event_name"].strip() if then == NEW_EVENT else then
        rows.append({"when": data["when"], "event": None if then == FAIL_THE_RUN else event})
    return rows


def outcome_management_data(rows: list[dict]) -> dict[str, str]:
    """Return POST data for the Outcomes formset holding exactly these rows."""
    data = {
        "outcomes-TOTAL_FORMS": str(len(rows)),
        "outcomes-INITIAL_FORMS": "0",
        "outcomes-MIN_NUM_FORMS": "0",
        "outcomes-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data[f"outcomes-{index}-when"] = row.get("when", "")
        data[f"outcomes-{index}-then"] = row.get("event") or FAIL_THE_RUN
    return data


class CloudFunctionForm(forms.ModelForm):
    """Keeps everything typed: problems are reported on the step, not by refusing the save."""

    provider = forms.ChoiceField(
        label="Cloud provider",
        required=False,
        choices=[("", "Any provider"), *Connection.Provider.choices],
    )
    completion_event_choice = forms.ChoiceField(label="Completion event", required=False)
    new_event_name = forms.CharField(
        label="New event name",
        required=False,
        max_length=100,
        help_text="Any name up to 100 characters without a colon, like Order created.",
    )
    max_attempts = forms.IntegerField(
        label="Attempts",
        min_value=1,
        max_value=10,
        required=False,
        help_text="In deployed runs: tries on timeouts, connection errors, 429 and 5xx.",
    )
    revision = forms.IntegerField(widget=forms.HiddenInput)
    timeout_seconds = forms.IntegerField(
        label="Timeout",
        min_value=1,
        required=False,
        help_text="Seconds this step's request may take; empty: the server's overall deadline.",
    )

    class Meta:
        model = CloudFunction
        fields = [
            "name",
            "connection",
            "method",
            "uri",
            "body_mode",
            "body",
            "result",
            "timeout_seconds",
        ]
        widgets = {
            "body_mode": forms.RadioSelect,
            "uri": forms.TextInput(attrs={"class": "cel", "spellcheck": "false"}),
            "body": forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
        }
        help_texts = {
            "uri": 'A CEL expression relative to the base URL, e.g. "/v1/charges".',
            "result": (
                "Optional CEL shaping what the completion event carries, over response "
                '(status, headers, body, duration_ms), e.g. {"id": response.body.id}.'
            ),
        }

    def __init__(self, *args, step, **kwargs):
        super().__init__(*args, **kwargs)
        self.step = step
        self.fields["connection"].queryset = Connection.objects.defer(
            *Connection.SECRET_FIELDS, "oauth_token"
        )
        # Kept exactly as typed, surrounding spaces included: the page shows what is stored.
        for name in ("name", "uri", "body", "result"):
            self.fields[name].strip = False
        self.fields["timeout_seconds"].max_value = int(settings.OUTBOUND_DEADLINE_SECONDS)
        self.fields["timeout_seconds"].validators.append(
            MaxValueValidator(int(settings.OUTBOUND_DEADLINE_SECONDS))
        )
        self.fields["connection"].label = "Connection"
        self.fields["connection"].empty_label = "Choose a connection"
        # Bound always: the editor passes what was typed, or the stored values as data.
        provider = self.data.get("provider")
        if provider:
            self.fields["connection"].queryset = self.fields["connection"].queryset.filter(
                provider=provider
            )
        # An event has one emitter: offer the free ones and this step's own.
        events = step.process.events.filter(Q(emitter__isnull=True) | Q(emitter__step=step))
        self.fields["completion_event_choice"].choices = [
            ("", "No completion event"),
            *[(str(e.pk), e.name) for e in events],
            (NEW_EVENT, "Create a new event…"),
        ]

    def clean_connection(self):
        connection = self.cleaned_data.get("connection")
        provider = self.cleaned_data.get("provider")
        if connection and provider and connection.provider != provider:
            raise forms.ValidationError("This connection is not of the chosen cloud provider.")
        return connection

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("completion_event_choice") != NEW_EVENT:
            # The name of a new event only matters when one is asked for.
            self._errors.pop("new_event_name", None)
            cleaned["new_event_name"] = ""
        else:
            name = (cleaned.get("new_event_name") or "").strip()
            if not name:
                self.add_error("new_event_name", "Name the new completion event.")
            else:
                try:
                    validate_event_name(name)
                except forms.ValidationError as exc:
                    self.add_error("new_event_name", exc)
                else:
                    existing = CompletionEvent.objects.filter(
                        process=self.step.process, name=name
                    ).first()
                    if existing is None:
                        pass
                    elif existing.pk == self.instance.completion_event_id:
                        # Created by this very form's earlier save (the rest then needed
                        # attention): the page still says "new", the step already emits it.
                        cleaned["completion_event_choice"] = str(existing.pk)
                    else:
                        self.add_error(
                            "new_event_name", f"The event “{name}” already exists; pick it instead."
                        )
        return cleaned
