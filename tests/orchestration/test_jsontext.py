"""One JSON depth policy for everything people and APIs send (issue 13, D5)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.jsontext import MAX_DEPTH, TOO_DEEP, JSONTextError, parse_json
from orchestration.models import Run
from orchestration.runs.views import RUN_INPUT_BAD_JSON, WEBHOOK_BAD_JSON

REFUSAL = TOO_DEEP.format(limit=MAX_DEPTH)
# Text whose brackets, quotes and backslashes must not count: they sit inside strings.
TRICKY = st.text(st.sampled_from('[]{}"\\/ aé\n'), max_size=6)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def json_of_depth(draw) -> tuple[int, object]:
    """A JSON value exactly `depth` containers deep, with noise beside the deepest path."""
    depth = draw(st.integers(min_value=0, max_value=MAX_DEPTH + 40))
    value: object = draw(st.one_of(st.integers(), TRICKY, st.none()))
    for _ in range(depth):
        noise = draw(st.lists(st.one_of(TRICKY, st.integers(), st.just([])), max_size=2))
        if draw(st.booleans()):
            value = [*noise, value]
        else:
            value = {draw(TRICKY): value, **{f"k{i}": item for i, item in enumerate(noise)}}
    return depth, value


@settings(max_examples=200, deadline=None)
@given(case=json_of_depth(), indent=st.sampled_from([None, 1]))
def test_the_depth_limit_is_exact_and_strings_do_not_count(case, indent):
    depth, value = case
    # An empty [] as noise adds a level beside the path: the depth is that of the text.
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    real_depth = _depth(value)
    if real_depth <= MAX_DEPTH:
        assert parse_json(text) == value
    else:
        with pytest.raises(JSONTextError) as refused:
            parse_json(text)
        assert refused.value.msg == REFUSAL
    assert real_depth >= depth


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    return 0


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 999, 2_400, 100_000])
def test_deep_text_is_refused_with_the_limit_and_where(depth):
    with pytest.raises(JSONTextError) as refused:
        parse_json('{"a":\n' + nested(depth) + "}")
    assert refused.value.msg == REFUSAL and "64" in REFUSAL
    assert (refused.value.line, refused.value.column) == (2, MAX_DEPTH)


def test_the_limit_does_not_depend_on_the_recursion_limit():
    """A fresh process, then the same after cel-python raised the recursion limit."""
    script = textwrap.dedent(
        """
        import json, sys
        from orchestration.jsontext import JSONTextError, parse_json

        def outcomes():
            found = []
            for depth in (64, 65, 999, 2400, 100000):
                try:
                    parse_json("[" * depth + "]" * depth)
                    found.append("ok")
                except JSONTextError as error:
                    found.append(str(error))
            return found

        fresh = (sys.getrecursionlimit(), outcomes())
        import celpy
        celpy.Environment().compile("1 + 1")
        later = (sys.getrecursionlimit(), outcomes())
        print(json.dumps([fresh, later]))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    (fresh_limit, fresh), (later_limit, later) = json.loads(run.stdout)
    assert later_limit > fresh_limit  # what made the outcome change before
    refusal = f"{REFUSAL} at line 1, column {MAX_DEPTH + 1}"
    assert fresh == later == ["ok", refusal, refusal, refusal, refusal]


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [999, 2_400])
def test_a_deep_webhook_payload_is_refused_with_400(client, hooked, depth):
    process, token, _ = hooked
    response = client.post(
        reverse("webhook", args=[process.pk]),
        '{"a": ' + nested(depth) + "}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 400
    expected = WEBHOOK_BAD_JSON.format(msg=REFUSAL, line=1, column=6 + MAX_DEPTH)
    assert response.json() == {"error": expected}
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_deep_run_input_is_refused_with_400(designer_client, hooked):
    process, _, _ = hooked
    response = designer_client.post(
        reverse("run-now", args=[process.pk]), {"input": '{"a": ' + nested(999) + "}"}
    )
    assert response.status_code == 400
    expected = RUN_INPUT_BAD_JSON.format(msg=REFUSAL, line=1, column=6 + MAX_DEPTH)
    assert expected in response.content.decode()
    assert not Run.objects.exists()
