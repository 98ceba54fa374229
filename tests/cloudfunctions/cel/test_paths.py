"""The CEL paths the editor offers select exactly the value they are shown next to."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cloudfunctions import cel
from cloudfunctions.cel import paths

# Text CEL can carry: JSON payloads decoded by jsontext never hold NUL or a lone surrogate.
KEYS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), KEYS)
PAYLOADS = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(payload=st.dictionaries(KEYS, PAYLOADS, max_size=4))
@example(payload={"😀": 1, "in": 2, "a-b": [3], "é": {"while": 4}, "\u2028": 5, 'q"\\': 6})
def test_every_offered_path_evaluates_to_the_value_shown(payload):
    events = {"charge.created": payload}
    leaves = paths.leaves(events)
    checked = 0
    for leaf in leaves:
        # A generous limit: this checks paths, not speed, on a machine other suites share.
        value = cel.evaluate(leaf["path"], trigger={}, events=events, field="path", timeout=10)
        assert leaf["value"] == json.dumps(value, ensure_ascii=False)[:200]
        checked += 1
    assert checked == len(leaves)


def test_keys_keep_their_characters_in_the_path():
    # An astral character used to be written as a surrogate pair CEL refuses.
    assert paths.child_path("trigger", "😀") == 'trigger["😀"]'
    assert paths.child_path("trigger", "é") == 'trigger["é"]'
    assert paths.child_path("trigger", "in") == 'trigger["in"]'
    assert paths.child_path("trigger", "id") == "trigger.id"
    assert paths.child_path("trigger", 2) == "trigger[2]"
    assert paths.event_root("charge.created") == 'events["charge.created"]'


def test_a_large_payload_is_cut_at_the_node_limit():
    nodes = paths.tree("trigger", {"items": list(range(paths.MAX_NODES * 2))})
    assert len(nodes) == paths.MAX_NODES
