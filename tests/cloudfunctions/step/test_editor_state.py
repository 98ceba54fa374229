"""Any sequence of edits and saves, then a reload, shows exactly what was last typed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from cloudfunctions.step.editor import StepEditor
from cloudfunctions.step.forms import NEW_EVENT
from orchestration.models import Step
from orchestration.validators import validate_event_name
from tests import factories as user_factories
from tests.factories import (
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
    StepFactory,
)

pytestmark = pytest.mark.django_db

MAX_ROWS = 6
TAKEN = "taken.event"  # emitted by another step of the process: refused as a new name

# What a designer types into a CEL field: valid, broken, empty, spaced, unicode.
CEL = st.one_of(
    st.sampled_from(
        [
            '"/v1/orders"',
            "/v1/orders/",
            '"/v1/" + trigger.order.id',
            'events["Order created"].body.id',
            '"unterminated',
            "",
            "  ",
            "1 +",
            '"ü"',
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
)
EVENT_NAMES = st.one_of(
    st.sampled_from(["charge.created", "Order created", TAKEN, "bad\tname", "", "x" * 101]),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),
)
ATTEMPTS = st.sampled_from(["1", "3", "10", "0", "11", "many"])


def rows_of(data: dict, prefix: str) -> list[tuple[str, str]]:
    """The rows a page's data submits, in their order, without removed or empty ones."""
    rows = []
    for i in range(int(data[f"{prefix}-TOTAL_FORMS"])):
        key, value = data.get(f"{prefix}-{i}-key", ""), data.get(f"{prefix}-{i}-value", "")
        if data.get(f"{prefix}-{i}-DELETE") or not (key or value):
            continue
        rows.append((int(data.get(f"{prefix}-{i}-ORDER") or 0), i, key, value))
    return [(key, value) for *_, key, value in sorted(rows)]


def shown(data: dict) -> dict:
    """What the designer sees in the tab for this data."""
    return {
        "name": data.get("name", ""),
        "uri": data.get("uri", ""),
        "body": data.get("body", ""),
        "max_attempts": data.get("max_attempts", ""),
        "event": data.get("completion_event_choice", ""),
        "new_event_name": data.get("new_event_name", ""),
        "query": rows_of(data, "query"),
        "headers": rows_of(data, "headers"),
    }


class EditorMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.actor = user_factories.designer()
        other = CloudFunctionFactory(completion_event=None)
        other.completion_event = EventFactory(process=other.step.process, name=TAKEN)
        other.save()
        self.step = StepFactory(process=other.step.process)
        self.connection = ApiKeyConnectionFactory()
        self.data = StepEditor(self._fresh_step()).data
        self.data.update(connection=str(self.connection.pk), provider="custom")
        self.saved: dict | None = None

    def _fresh_step(self) -> Step:
        return Step.objects.select_related("process").get(pk=self.step.pk)

    def _event_names(self) -> dict[str, str]:
        return {str(e.pk): e.name for e in self.step.process.events.all()}

    # Edits: what the designer types on the page; nothing is stored.
    @rule(text=CEL)
    def type_uri(self, text):
        self.data["uri"] = text

    @rule(text=st.one_of(CEL, st.sampled_from(['{"a": 1}', '{"a": }', "[1, 2]"])))
    def type_body(self, text):
        self.data["body"] = text

    @rule(text=st.sampled_from(["Create order", " Call ", "n" * 201, ""]))
    def type_name(self, text):
        self.data["name"] = text

    @rule(value=ATTEMPTS)
    def type_attempts(self, value):
        self.data["max_attempts"] = value

    @rule(name=EVENT_NAMES)
    def create_new_event(self, name):
        self.data["completion_event_choice"] = NEW_EVENT
        self.data["new_event_name"] = name

    @rule()
    def choose_no_event(self):
        self.data["completion_event_choice"] = ""

    @rule(prefix=st.sampled_from(["query", "headers"]), key=CEL, value=CEL, server=st.booleans())
    def add_row(self, prefix, key, value, server):
        total = int(self.data[f"{prefix}-TOTAL_FORMS"])
        if total >= MAX_ROWS:
            return
        if server:  # "Add" without JavaScript: the editor redraws with one more row
            self.data = StepEditor(self._fresh_step(), self.data).with_row(prefix).data
        else:  # the script adds the row from the empty form and counts it
            self.data[f"{prefix}-TOTAL_FORMS"] = str(total + 1)
        self.data[f"{prefix}-{total}-key"] = key
        self.data[f"{prefix}-{total}-value"] = value
        self.data[f"{prefix}-{total}-ORDER"] = str(total + 1)

    @rule(prefix=st.sampled_from(["query", "headers"]), index=st.integers(0, MAX_ROWS), key=CEL)
    def edit_row(self, prefix, index, key):
        if index < int(self.data[f"{prefix}-TOTAL_FORMS"]):
            self.data[f"{prefix}-{index}-key"] = key

    @rule(prefix=st.sampled_from(["query", "headers"]), index=st.integers(0, MAX_ROWS))
    def remove_row(self, prefix, index):
        if index < int(self.data[f"{prefix}-TOTAL_FORMS"]):
            self.data[f"{prefix}-{index}-DELETE"] = "on"

    @rule(prefix=st.sampled_from(["query", "headers"]))
    def swap_first_rows(self, prefix):
        if int(self.data[f"{prefix}-TOTAL_FORMS"]) >= 2:
            first, second = f"{prefix}-0-ORDER", f"{prefix}-1-ORDER"
            self.data[first], self.data[second] = self.data[second], self.data[first]

    # Saves: Save redirects to the stored page; Test keeps the page as typed, new revision.
    @rule(redirect=st.booleans())
    def save(self, redirect):
        typed = shown(self.data)
        refused = self._refused(typed["new_event_name"].strip())
        result = StepEditor(self._fresh_step(), self.data).save(actor=self.actor)
        assert result.saved, result.refusal
        self.saved = self._expected(typed, refused=refused)
        if redirect:
            self.data = StepEditor(self._fresh_step()).data
        else:
            self.data["revision"] = str(self._fresh_step().revision)

    def _expected(self, typed: dict, *, refused: bool) -> dict:
        """What a reload must show after saving `typed`: the same, but a new event created."""
        expected = dict(typed)
        name = typed["new_event_name"].strip()
        if typed["event"] == NEW_EVENT and not refused:
            pk = next(pk for pk, n in self._event_names().items() if n == name)
            expected.update(event=pk, new_event_name="")
        elif typed["event"] != NEW_EVENT:
            expected["new_event_name"] = ""  # a name beside another choice is not kept
        return expected

    def _refused(self, name: str) -> bool:
        """Whether the form refuses this new event name (checked before the save)."""
        try:
            validate_event_name(name)
        except ValidationError:
            return True
        cf = self._fresh_step().cloud_function if self.step_is_configured() else None
        own = cf.completion_event.name if cf and cf.completion_event_id else None
        return not name or (name in self._event_names().values() and name != own)

    def step_is_configured(self) -> bool:
        return hasattr(self._fresh_step(), "cloud_function")

    @precondition(lambda self: self.saved is not None)
    @invariant()
    def a_reload_shows_the_last_save(self):
        assert shown(StepEditor(self._fresh_step()).data) == self.saved


def test_any_edits_and_saves_then_a_reload_show_what_was_last_typed():
    run_state_machine_as_test(
        EditorMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
