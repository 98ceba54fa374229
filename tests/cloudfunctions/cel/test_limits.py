"""CEL resource bounds, checked while an expression runs (issue 13, D1)."""

from __future__ import annotations

import tracemalloc

import pytest
from django.urls import reverse

from cloudfunctions import cel
from cloudfunctions.cel import compiler, limits
from cloudfunctions.cel import messages as msg
from orchestration.web.throttle import FIELD_CHECKS_THROTTLED
from tests import factories as user_factories
from tests.factories import StepFactory

TEN_MB = 10_000_000
LIST_40 = "[" + ",".join(str(i) for i in range(40)) + "]"
# The attack: about 500 characters of nested map() building 40**4 strings.
NESTED_MAPS = (
    f'{LIST_40}.map(a, {LIST_40}.map(b, {LIST_40}.map(c, {LIST_40}.map(d, "xxxxxxxxxxxxxxxx"))))'
)
REFUSALS = {
    msg.TIMEOUT.format(seconds=cel.DEFAULT_TIMEOUT),
    limits.TOO_LARGE,
    limits.TOO_MUCH_WORK,
}


def doubling(levels: int, seed: str = '"xxxxxxxx"') -> str:
    """A string doubled in `levels` nested map() bodies: 8 * 2**levels characters, 60 steps."""
    expression = f"v{levels - 1} + v{levels - 1}"
    for level in range(levels - 1, 0, -1):
        expression = f"[v{level - 1} + v{level - 1}].map(v{level}, {expression})[0]"
    return f"[{seed}].map(v0, {expression})[0]"


def shared_halves(levels: int) -> str:
    """A list holding its own previous value twice per level: 2**levels items once converted."""
    expression = f"[v{levels - 1}, v{levels - 1}]"
    for level in range(levels - 1, 0, -1):
        expression = f"[[v{level - 1}, v{level - 1}]].map(v{level}, {expression})[0]"
    return f"[[trigger.n]].map(v0, {expression})[0]"


@pytest.fixture(autouse=True)
def _cold_cache():
    cel.clear_cache()
    yield
    cel.clear_cache()


def peak_bytes(action) -> tuple[object, int]:
    """Run `action` under tracemalloc; return its outcome and the peak bytes it allocated."""
    tracemalloc.start()
    try:
        try:
            outcome = action()
        except cel.CelError as error:
            outcome = error
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_nested_map_attack_is_refused_while_it_runs_in_bounded_memory():
    source = NESTED_MAPS.replace('"xxxx', 'trigger.s + "xxxx')  # not foldable: evaluated
    assert len(source) < 520
    error, peak = peak_bytes(lambda: cel.evaluate(source, trigger={"s": ""}, events={}))
    assert isinstance(error, cel.CelError) and error.kind in ("limit", "timeout")
    assert error.message in REFUSALS
    assert peak < TEN_MB, peak


def test_nested_map_attack_is_refused_by_the_check_and_not_cached_large():
    problems, peak = peak_bytes(lambda: cel.check_expression(NESTED_MAPS))
    assert [p.message for p in problems] in [[refusal] for refusal in REFUSALS]
    assert peak < TEN_MB, peak
    assert compiler._cache_bytes < TEN_MB


@pytest.mark.parametrize("levels", [20, 30])
def test_a_string_doubled_in_nested_bodies_is_refused_as_it_grows(levels):
    # 20 levels made an 8 MB string in 0.07 s; 30 would be 8 GB (the MemoryError).
    source = doubling(levels, seed='trigger.s + "xxxxxxx"')
    error, peak = peak_bytes(
        lambda: cel.evaluate(source, trigger={"s": "x"}, events={}, timeout=60)
    )
    assert error.message == limits.TOO_LARGE and error.kind == "limit"
    assert peak < TEN_MB, peak


def test_shared_parts_are_counted_at_each_use():
    # Few items are made, but the result repeats them 2**24 times once converted.
    error, peak = peak_bytes(
        lambda: cel.evaluate(shared_halves(24), trigger={"n": 1}, events={}, timeout=60)
    )
    assert error.message == limits.TOO_LARGE
    assert peak < TEN_MB, peak


def test_comprehension_steps_are_counted(monkeypatch):
    monkeypatch.setattr(limits, "MAX_COMPREHENSION_STEPS", 100)
    source = f"{LIST_40}.map(a, {LIST_40}.all(b, b < trigger.n + 100))"
    with pytest.raises(cel.CelError) as caught:
        cel.evaluate(source, trigger={"n": 1}, events={}, timeout=60)
    assert caught.value.message == limits.TOO_MUCH_WORK


def test_values_within_the_limits_are_untouched():
    items = [{"id": f"i{k}"} for k in range(300)]
    assert cel.evaluate("trigger.items.map(i, i.id)", trigger={"items": items}, events={}) == [
        f"i{k}" for k in range(300)
    ]
    assert cel.evaluate(doubling(10, seed='trigger.s + "x"'), trigger={"s": "y"}, events={}) == (
        "yx" * 2**10
    )
    # Input read as it is costs nothing: a large trigger passes through untouched.
    big = {"text": "z" * (2 * limits.MAX_VALUE_CHARACTERS)}
    assert len(cel.evaluate("trigger.text", trigger=big, events={})) == len(big["text"])


def test_the_interpreter_hook_is_reached_for_every_subtree(monkeypatch):
    # limits.BoundedEvaluator overrides lark's Interpreter._visit_tree (lark pinned to 1.x).
    seen = []
    original = limits.Budget.made
    monkeypatch.setattr(limits.Budget, "made", lambda self, v: seen.append(v) or original(self, v))
    cel.evaluate('[trigger.s + "b"].map(x, x + "c")', trigger={"s": "a"}, events={})
    strings = {str(value) for value in seen if isinstance(value, str)}
    assert {"ab", "abc"} <= strings


def test_a_folded_constant_weighs_its_value_in_the_cache():
    small = "[1].map(a, a)"
    cel.check_expression(small)
    light = compiler._cache_bytes
    cel.clear_cache()
    assert cel.check_expression(doubling(14)) == []
    # A 131,072-character string: once weighed as one node, whatever the size of the value.
    assert compiler._cache_bytes > 8 * 2**14 > 100 * light


@pytest.mark.django_db
def test_live_check_refuses_the_attack_in_bounded_memory(designer_client):
    step = StepFactory()
    url = reverse("cloud-function-check", args=[step.process_id, step.pk])
    for source in (NESTED_MAPS, doubling(30)):
        response, peak = peak_bytes(
            lambda source=source: designer_client.post(
                url, {"_field": "uri", "uri": source}, HTTP_HX_REQUEST="true"
            )
        )
        html = response.content.decode()
        assert response.status_code == 200
        assert any(refusal.replace("'", "&#x27;") in html for refusal in REFUSALS), html
        assert peak < TEN_MB, peak


@pytest.mark.django_db
def test_live_check_is_rate_limited_per_user(settings, designer_client):
    settings.FIELD_CHECK_LIMIT = 3
    step = StepFactory()
    url = reverse("cloud-function-check", args=[step.process_id, step.pk])

    def check(who, n):
        return who.post(url, {"_field": "uri", "uri": f'"/v{n}"'}, HTTP_HX_REQUEST="true")

    for n in range(3):
        assert 'class="cel-status ok"' in check(designer_client, n).content.decode()
    compiled = cel.compile_count()
    refused = check(designer_client, 4)
    html = refused.content.decode()
    assert refused.status_code == 200  # htmx swaps it into the field's status
    assert FIELD_CHECKS_THROTTLED.split("{")[0] in html and 'class="cel-status bad"' in html
    assert cel.compile_count() == compiled  # refused before any CEL work
    plain = designer_client.post(url, {"_field": "uri", "uri": '"/v5"'})
    assert plain.status_code == 429
    designer_client.force_login(user_factories.designer(username="olga"))  # another user
    assert 'class="cel-status ok"' in check(designer_client, 6).content.decode()
