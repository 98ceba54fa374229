"""The Cloud function tab as one object: its form and both row formsets, bound together.

Like Django admin's change form (`_changeform_view`), every action binds the form and the
query and header formsets to the same data, validates them together and, for Save and Test,
saves them through one service in one transaction. The data is what the designer typed, or
for a page opened afresh what is stored (the draft of refused text included), so what the
page shows and what is stored never drift apart.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field

from django.db import IntegrityError
from django.forms import all_valid

from cloudfunctions.http.redaction import MASK
from cloudfunctions.models import CloudFunction, Connection
from cloudfunctions.step import checks, services
from cloudfunctions.step.forms import (
    NEW_EVENT,
    CloudFunctionForm,
    OutcomeFormSet,
    outcome_management_data,
    outcomes_from_formset,
    row_formsets,
    row_management_data,
    rows_from_formset,
)
from orchestration.models import Step
from orchestration.processes import step_kinds
from orchestration.validators import is_ascii_digits

SAVED = "Cloud function saved."
SAVED_WITH_PROBLEMS = "Saved, but some fields need attention (see below)."
INCOMPLETE = "The form was incomplete; nothing was saved. Please try again."
OUTCOMES_REFUSED = "An Outcomes row needs attention (see below); nothing was saved."
EVENT_TAKEN = (
    "That completion event was just taken by another step; nothing was saved. Pick another."
)
KEPT_SAVED = "The saved value is kept."
# Refused text that can be stored as typed and shown again; other refusals (a connection,
# method or choice that is not offered) come only from a stale or forged page.
DRAFT_FIELDS = ("name", "max_attempts", "completion_event_choice", "new_event_name")
ROW_PREFIXES = ("query", "headers")


def field_label(name: str) -> str:
    """Return the label a problem of the field `name` is told under ("Header 2 key")."""
    prefix, _, rest = name.partition("-")
    if prefix in ROW_PREFIXES and rest:
        index, _, part = rest.partition("-")
        label = "Query parameter" if prefix == "query" else "Header"
        if is_ascii_digits(index):
            return f"{label} {int(index) + 1} {part}"
    return {"uri": "URI", "body": "Body"}.get(name, name)


def check_field(name: str, source: str, *, body_mode: str, known_events) -> list:
    """Return the problems of one CEL (or JSON body) field as typed."""
    if name == "body":
        if body_mode == CloudFunction.BodyMode.CEL:
            return (
                checks.check_cel(source, field="Body", known_events=known_events) if source else []
            )
        return checks.check_json_body(source)
    if name == "uri":
        return checks.check_uri(source, known_events=known_events)
    return checks.check_cel(source, field=field_label(name), known_events=known_events)


def quoting_fix(name: str, source: str, *, known_events) -> str:
    """Return `source` as a CEL string when that is all it lacks (/v1/orders/), else ""."""
    text = source.strip()
    if not text or name == "body" or text.startswith(('"', "'")):
        return ""
    quoted = json.dumps(text, ensure_ascii=False)
    problems = check_field(name, quoted, body_mode="", known_events=known_events)
    return "" if problems else quoted


_NO_KEY = re.compile(r'no key "(?:[^"\\]|\\.)*" in ([A-Za-z_][\w.]*(?:\["[^"]*"\][\w.]*)*)$')


def known_keys(message: str, context: dict) -> list[str]:
    """Return the keys present where an evaluation found none (`no key "idd" in trigger.order`)."""
    match = _NO_KEY.search(message)
    if match is None:
        return []
    from cloudfunctions import cel

    try:
        parent = cel.evaluate(
            match.group(1), trigger=context["trigger"], events=context["events"], field="path"
        )
    except cel.CelError:
        return []
    return sorted(map(str, parent))[:20] if isinstance(parent, dict) else []


def with_masked_auth(request: dict, connection: Connection | None) -> dict:
    """Return a stored request (kept before credentials) with the connection's auth added,
    masked, as it went out: the page and Copy curl then show every header that was sent."""
    if not request or connection is None:
        return request
    headers = dict(request.get("headers") or {})
    url = request.get("url", "")
    if connection.is_amazon_connect:
        key_id = connection.access_key_id or ""
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={key_id[:4]}…/…, SignedHeaders=…, Signature={MASK}"
        )
    elif connection.auth_type == Connection.AuthType.OAUTH2:
        headers["Authorization"] = f"Bearer {MASK}"
    elif connection.auth_type == Connection.AuthType.API_KEY and connection.api_key_name:
        if connection.api_key_location == Connection.ApiKeyLocation.QUERY:
            url += ("&" if "?" in url else "?") + f"{connection.api_key_name}={MASK}"
        else:
            headers[connection.api_key_name] = MASK
    return {**request, "url": url, "headers": headers, "auth_by": connection.name}


def stored_data(step: Step, cf: CloudFunction) -> dict[str, str]:
    """Return the tab's form data as stored: the saved request plus the draft of refused text."""
    data = {
        "revision": str(step.revision),
        "name": cf.name,
        "provider": cf.connection.provider if cf.connection_id else "",
        "connection": str(cf.connection_id or ""),
        "method": cf.method,
        "uri": cf.uri,
        "body_mode": cf.body_mode,
        "body": cf.body,
        "result": cf.result,
        "timeout_seconds": "" if cf.timeout_seconds is None else str(cf.timeout_seconds),
        "max_attempts": str(step.max_attempts),
        "completion_event_choice": str(cf.completion_event_id or ""),
        "new_event_name": "",
        **row_management_data("query", cf.query_params or []),
        **row_management_data("headers", cf.headers or []),
        **outcome_management_data(cf.outcomes or []),
    }
    data.update({k: str(v) for k, v in (cf.draft or {}).items() if k in DRAFT_FIELDS})
    return data


def _load(step: Step) -> CloudFunction:
    # Never the step's cached cloud function: the form writes into its instance as it
    # cleans, and a cached copy is what made Test send the rows of the save before.
    cf = (
        CloudFunction.objects.select_related("connection", "completion_event")
        .defer("connection__oauth_token", *(f"connection__{f}" for f in Connection.SECRET_FIELDS))
        .filter(step=step)
        .first()
    )
    return cf or CloudFunction(step=step)


@dataclass
class SaveResult:
    """What a Save did: `saved` unless refused as a whole.

    `refused` labels the fields whose typed value the form refused (their stored value stays
    in force); `kept` says why for those whose text could not even be kept in the draft.
    """

    saved: bool
    refusal: str = ""
    conflict: bool = False
    refused: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


class StepEditor:
    """The Cloud function tab for one step, bound to typed or stored data."""

    def __init__(self, step: Step, data=None):
        self.step = step
        self.cloud_function = _load(step)
        self.typed = data is not None
        if data is None:
            data = stored_data(step, self.cloud_function)
        elif hasattr(data, "dict"):
            data = data.dict()  # a QueryDict: one value per name, replaceable
        self.data = dict(data)
        if "outcomes-TOTAL_FORMS" not in self.data:
            # A page from before Outcomes existed, or a client that leaves them out: the
            # stored rows stay as they are.
            self.data.update(outcome_management_data(self.cloud_function.outcomes or []))
        self.form = CloudFunctionForm(self.data, instance=self.cloud_function, step=step)
        self.query, self.headers = row_formsets(self.data)
        # The events a row may name: the process's, and any a stored row names already.
        events = {e.name for e in step.process.events.all()}
        events |= {r["event"] for r in self.cloud_function.outcomes or [] if r.get("event")}
        self.outcomes = OutcomeFormSet(
            self.data, prefix="outcomes", form_kwargs={"events": sorted(events)}
        )

    @property
    def is_configured(self) -> bool:
        return self.cloud_function.pk is not None

    def is_valid(self) -> bool:
        """Validate the form and both formsets together (all of them, every time)."""
        form_valid = self.form.is_valid()
        return all_valid([self.query, self.headers, self.outcomes]) and form_valid

    def rows_are_readable(self) -> bool:
        """Whether both formsets could be read (management data present, orders numbers)."""
        return self.query.is_valid() and self.headers.is_valid()

    def with_fill(self, fill: dict) -> StepEditor:
        """Return the editor with a helper's method, URI, rows and body put in; nothing saved."""
        data = dict(self.data)
        data.update(method=fill["method"], uri=fill["uri"], body=fill["body"])
        data["body_mode"] = CloudFunction.BodyMode.JSON
        for prefix in ROW_PREFIXES:
            for key in [k for k in data if k.startswith(f"{prefix}-")]:
                del data[key]
            data.update(row_management_data(prefix, fill[prefix]))
        return StepEditor(self.step, data)

    def with_row(self, prefix: str) -> StepEditor:
        """Return the editor with one more empty row in `prefix`; nothing saved."""
        data = dict(self.data)
        total = data.get(f"{prefix}-TOTAL_FORMS", "")
        if prefix in (*ROW_PREFIXES, "outcomes") and is_ascii_digits(total):
            data[f"{prefix}-TOTAL_FORMS"] = str(int(total) + 1)
        return StepEditor(self.step, data)

    def save(self, *, actor) -> SaveResult:
        """Store everything typed: valid values in place, refused text in the draft."""
        self.is_valid()
        form = self.form
        if not self.rows_are_readable() or "revision" in form.errors:
            return SaveResult(saved=False, refusal=INCOMPLETE)
        if not self.outcomes.is_valid():
            # The page comes back as typed, with each row's problem; nothing is lost.
            return SaveResult(saved=False, refusal=OUTCOMES_REFUSED)
        cleaned = form.cleaned_data
        fields = {name: cleaned[name] for name in CloudFunctionForm.Meta.fields if name in cleaned}
        # NUL cannot be stored in PostgreSQL JSON (the form refuses it anyway): shown as U+FFFD.
        draft = {
            name: str(self.data.get(name, "")).replace("\x00", "\ufffd")
            for name in DRAFT_FIELDS
            if name in form.errors
        }
        if "new_event_name" in draft:
            draft["completion_event_choice"] = NEW_EVENT
        if "completion_event_choice" in draft and draft["completion_event_choice"] != NEW_EVENT:
            del draft["completion_event_choice"]  # a choice not offered cannot be shown again
        refused = [name for name in form.errors if name in form.fields and name != "revision"]
        cf = self.cloud_function
        event, new_event = (cf.completion_event if cf.pk else None), None
        choice = cleaned.get("completion_event_choice")
        if "completion_event_choice" in form.errors:
            pass  # an event taken meanwhile: keep the stored one
        elif choice == NEW_EVENT:
            if "new_event_name" not in form.errors:
                new_event = cleaned["new_event_name"].strip()
        else:
            event = self.step.process.events.filter(pk=choice).first() if choice else None
        try:
            services.cloud_function_save(
                step=self.step,
                actor=actor,
                expected_revision=cleaned["revision"],
                fields=fields,
                query_params=rows_from_formset(self.query),
                headers=rows_from_formset(self.headers),
                new_event_name=new_event,
                event=event,
                max_attempts=cleaned.get("max_attempts"),
                draft=draft,
                outcomes=outcomes_from_formset(self.outcomes),
            )
        except services.EditConflict as conflict:
            return SaveResult(saved=False, refusal=str(conflict), conflict=True)
        except IntegrityError:
            # Someone took the event (its name, or as emitter) between the check and the save.
            form.add_error(None, EVENT_TAKEN)
            return SaveResult(saved=False, refusal=EVENT_TAKEN)
        return SaveResult(
            saved=True,
            refused=[form.fields[name].label for name in refused],
            kept=[
                f"{form.fields[name].label}: {' '.join(form.errors[name])} {KEPT_SAVED}"
                for name in refused
                if name not in draft
            ],
        )

    def mark_field_problems(self, *, known_events) -> None:
        """Put each typed CEL field's problems on its bound field (`cel_problems`), so the
        page is drawn with them; empty fields stay neutral until the designer types."""
        body_mode = self.data.get("body_mode", "")
        bound = [self.form["uri"], self.form["body"]]
        for formset in (self.query, self.headers):
            for row in formset:
                bound += [row["key"], row["value"]]
        for field_ in bound:
            source = field_.value() or ""
            if source.strip():
                field_.cel_problems = check_field(
                    field_.html_name, source, body_mode=body_mode, known_events=known_events
                )

    def incomplete(self, *, known_events) -> list[str]:
        """Return why the cloud function as shown could not run: for typed data (a Fill, an
        Import, Add row) what the page shows, not the stored step's last problems."""
        if not self.typed:
            return list(self.step.problems)
        self.is_valid()
        shown = copy.copy(self.cloud_function)  # the form has put the typed values on it
        shown.query_params = rows_from_formset(self.query) if self.query.is_valid() else []
        shown.headers = rows_from_formset(self.headers) if self.headers.is_valid() else []
        if self.outcomes.is_valid():
            shown.outcomes = outcomes_from_formset(self.outcomes)
        chosen = self.data.get("completion_event_choice", "")
        # A chosen or a new event counts as set; a refused name is listed with the form's errors.
        shown.completion_event_id = shown.completion_event_id or (1 if chosen else None)
        return [str(p) for p in checks.iter_problems(shown, known_events=known_events)]

    def has_problems(self) -> bool:
        return bool(self.form.errors)

    def reloaded(self) -> StepEditor:
        """Return the editor of what is stored now (after a save), read afresh."""
        step = Step.objects.select_related(
            "process", *step_kinds.get(self.step.kind).select_related
        )
        return StepEditor(step.get(pk=self.step.pk))
