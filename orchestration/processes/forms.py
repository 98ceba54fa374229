from __future__ import annotations

import json

from django import forms

from orchestration.jsontext import JSONTextError, NotAnObjectError, parse_json_object
from orchestration.models import Process
from orchestration.processes import routes

NOT_JSON = "Not valid JSON: {error}."
TEST_INPUT_NOT_OBJECT = "The test input must be a JSON object ({…})."
SAMPLE_NOT_OBJECT = "A sample payload is a JSON object ({…})."


class ProcessForm(forms.ModelForm):
    test_input = forms.CharField(
        label="Test input",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"}),
        help_text="JSON object available to expressions as trigger.",
    )

    class Meta:
        model = Process
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["test_input"] = json.dumps(self.instance.test_input or {}, indent=2)

    def clean_test_input(self):
        text = self.cleaned_data["test_input"].strip() or "{}"
        try:
            return parse_json_object(text)
        except JSONTextError as exc:
            raise forms.ValidationError(NOT_JSON.format(error=exc)) from None
        except NotAnObjectError:
            raise forms.ValidationError(TEST_INPUT_NOT_OBJECT) from None

    def save(self, commit=True):
        self.instance.test_input = self.cleaned_data["test_input"]
        return super().save(commit)


class StepNameForm(forms.Form):
    name = forms.CharField(max_length=200, label="Step name")


class StepStartForm(forms.Form):
    """Starts on: the process start, the previous step's event, or any event an earlier
    step can emit (the choices offered are exactly those)."""

    starts_on = forms.ChoiceField(label="Starts on", required=False)

    def __init__(self, *args, earlier_events: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["starts_on"].choices = [
            ("", "The previous step's completion event"),
            (routes.PROCESS_START, "Process start"),
            *[(routes.starts_on_event(name), f"“{name}”") for name in sorted(earlier_events)],
        ]


class SamplePayloadForm(forms.Form):
    # Validation only: the step editor writes its textarea by hand, beside the event it samples.
    payload = forms.CharField(label="Sample payload")

    def clean_payload(self):
        try:
            return parse_json_object(self.cleaned_data["payload"])
        except JSONTextError as exc:
            raise forms.ValidationError(NOT_JSON.format(error=exc)) from None
        except NotAnObjectError:
            raise forms.ValidationError(SAMPLE_NOT_OBJECT) from None
