"""How large, deep, slow and costly an expression may be, and the interpreter that enforces it."""

from __future__ import annotations

import sys
import time
from typing import Any

import lark
from celpy.evaluation import Activation, Evaluator

from cloudfunctions.cel import messages as msg

MAX_SOURCE_LENGTH = 4096
MAX_NESTING_DEPTH = 32
# The interpreter recurses about 4.5 Python frames per tree level; 32 nested brackets make
# about 330 levels, and 400 levels stay well inside the 2500-frame limit celpy asks for.
MAX_TREE_DEPTH = 400
DEFAULT_TIMEOUT = 0.5

# One request must not cost more than about 10 MB (issue 13, D1). A celpy list item or map
# entry takes 60-100 bytes with its value, a character 1-4 bytes. These bounds are checked as
# each value is made, not once the result is converted: nested map() over a 40-item list
# made 2.5 million items, and a string doubled in 30 nested map() bodies reaches gigabytes
# in about 60 interpreter steps, both long before any time limit acts.
MAX_VALUE_ITEMS = 20_000  # list items and map entries in one value, shared parts counted each time
MAX_VALUE_CHARACTERS = 1_000_000  # characters and bytes in one value
MAX_MADE_ITEMS = 50_000  # items in all the lists and maps one evaluation makes
MAX_MADE_CHARACTERS = 2_000_000  # characters in all the strings one evaluation makes
# Macro bodies evaluated, nested loops multiplied. celpy takes 0.1-0.5 ms a body, so the time
# limit usually acts first; this bound makes the refusal the same on a faster machine.
MAX_COMPREHENSION_STEPS = 10_000
TOO_LARGE = msg.TOO_LARGE.format(items=MAX_VALUE_ITEMS, characters=MAX_VALUE_CHARACTERS)
TOO_MUCH_WORK = msg.TOO_MUCH_WORK.format(limit=MAX_COMPREHENSION_STEPS)

# The compile cache keeps about this much: a parse tree weighs 750-950 bytes a node, a
# folded constant what its value takes.
CACHE_SIZE = 1024
CACHE_BYTES = 60_000_000
TREE_NODE_BYTES = 850


class Timeout(BaseException):
    """Stop an evaluation; a BaseException so that no `except Exception` in celpy swallows it."""


class OverLimit(BaseException):
    """Stop an evaluation past a size or work limit; `message` says which, for the designer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Nodes whose value is new (an operator's, a call's, a list or map literal's); the other
# nodes pass on a value already counted, or one read from the run's data.
_MAKING_PRIMARIES = frozenset({"list_lit", "map_lit", "ident_arg", "dot_ident_arg"})
_OPERATORS = frozenset({"addition", "multiplication"})


def _makes_value(tree: lark.Tree) -> bool:
    data = tree.data
    if data in _OPERATORS:
        return len(tree.children) > 1
    if data == "member_dot_arg":
        return True
    if data == "primary":
        child = tree.children[0] if tree.children else None
        return isinstance(child, lark.Tree) and child.data in _MAKING_PRIMARIES
    return False


class Budget:
    """What one evaluation may still spend: time, loop steps, and the values it makes."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.steps = 0
        self.made_items = 0
        self.made_characters = 0
        # Sizes of the containers seen, by id; each is kept alive here so no id is reused.
        self._sizes: dict[int, tuple[Any, int, int]] = {}

    def check_time(self) -> None:
        """Stop the evaluation once its deadline has passed."""
        if time.monotonic() > self.deadline:
            raise Timeout

    def step(self) -> None:
        """Count one evaluation of a macro body."""
        self.steps += 1
        if self.steps > MAX_COMPREHENSION_STEPS:
            raise OverLimit(TOO_MUCH_WORK)

    def made(self, value: Any) -> None:
        """Count a value an operation made, and stop if it or the total is too large."""
        if isinstance(value, str | bytes):
            self.made_characters += len(value)
            self._check(0, len(value))
        elif isinstance(value, list | dict) and id(value) not in self._sizes:
            self.made_items += len(value)
            self._check(*self.size(value))

    def _check(self, items: int, characters: int) -> None:
        if (
            items > MAX_VALUE_ITEMS
            or characters > MAX_VALUE_CHARACTERS
            or self.made_items > MAX_MADE_ITEMS
            or self.made_characters > MAX_MADE_CHARACTERS
        ):
            raise OverLimit(TOO_LARGE)

    def size(self, value: Any) -> tuple[int, int]:
        """Return the items and characters of `value`, shared parts counted at each use."""
        sizes = self._sizes
        stack: list[tuple[Any, bool]] = [(value, False)]
        while stack:
            item, children_done = stack.pop()
            if id(item) in sizes:
                continue
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            if not children_done:
                stack.append((item, True))
                stack.extend(
                    (child, False)
                    for child in children
                    if isinstance(child, list | dict) and id(child) not in sizes
                )
                continue
            items, characters = len(item), 0
            for child in children:
                if isinstance(child, str | bytes):
                    characters += len(child)
                elif isinstance(child, list | dict):
                    _, child_items, child_characters = sizes[id(child)]
                    items += child_items
                    characters += child_characters
            sizes[id(item)] = (item, items, characters)
            # Refused here already: a sum of shared parts may grow past any memory quickly.
            self._check(items, characters)
        return sizes[id(value)][1:]


class BoundedEvaluator(Evaluator):
    """celpy's interpreter, keeping to a Budget at every tree node it visits."""

    def __init__(self, ast: lark.Tree, activation: Activation, budget: Budget) -> None:
        super().__init__(ast, activation)
        self.budget = budget

    def evaluate(self, context: Any = None) -> Any:
        # Macros evaluate their body through a sub-evaluator once per item, with a context.
        if context:
            self.budget.step()
        return super().evaluate(context)

    def _visit_tree(self, tree: lark.Tree) -> Any:
        # lark's Interpreter reaches every subtree through this internal (visit() only for the
        # root), so the budget is kept here; lark is pinned to 1.x for it in pyproject.toml,
        # and tests/cloudfunctions/cel/test_limits.py checks that the hook is reached.
        self.budget.check_time()
        value = super()._visit_tree(tree)
        if _makes_value(tree):
            self.budget.made(value)
        return value

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        # Macro bodies run in sub-evaluators, so they must keep to the same budget.
        return BoundedEvaluator(ast, self.activation, self.budget)


def weight(value: Any) -> int:
    """Estimate the bytes `value` (plain Python data) keeps alive."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total
