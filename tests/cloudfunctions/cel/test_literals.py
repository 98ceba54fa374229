"""CEL literals: what a filler writes is read back by CEL as exactly the text it came from."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudfunctions import cel
from cloudfunctions.cel.literals import cel_string_literal


def value(expression: str):
    """Evaluate a constant CEL expression the way the editor would check it."""
    assert cel.check_expression(expression) == [], expression
    return cel.constant_value(expression)


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"',
        "\\",
        '\\"',
        '"\\',
        "\\n is not a newline",
        "line\nbreak\r\ttab",
        "".join(chr(code) for code in range(0x20)) + "\x7f\x85\x9f",
        "it's 'single' and \"double\"",
        "café ☕ 😀 \u2028",
        '${trigger.x} + "injected" + ',
        "".join(chr(code) for code in range(0x20, 0x7F)),
    ],
)
def test_cel_string_literal_round_trips_awkward_text(text):
    assert value(cel_string_literal(text)) == text


# Lone surrogates are left out: no request can carry them, and CEL refuses their escapes.
@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40))
def test_cel_string_literal_round_trips_any_text(text):
    literal = cel_string_literal(text)
    assert "\n" not in literal and "\r" not in literal  # one line in the editor
    assert value(literal) == text
