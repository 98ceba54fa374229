from __future__ import annotations

import json

from django import forms

from orchestration.jsontext import JSONTextError, parse_json
from orchestration.models import Process
from orchestration.processes import routes


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
            value = parse_json(text)
        except JSONTextError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The test input must be a JSON object ({…}).")
        return value

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
    payload = forms.CharField(
        label="Sample payload",
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"}),
        help_text='JSON, shaped like a captured event: {"status": 200, "headers": {}, "body": {…}}',
    )

    def clean_payload(self):
        try:
            value = parse_json(self.cleaned_data["payload"])
        except JSONTextError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("A sample payload is a JSON object ({…}).")
        return value
