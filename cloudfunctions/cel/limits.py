"""How large, deep and slow an expression may be, and the interpreter that enforces it."""

from __future__ import annotations

import time
from typing import Any

import lark
from celpy.evaluation import Activation, Evaluator

MAX_SOURCE_LENGTH = 4096
MAX_NESTING_DEPTH = 32
# The interpreter recurses about 4.5 Python frames per tree level; 32 nested brackets make
# about 330 levels, and 400 levels stay well inside the 2500-frame limit celpy asks for.
MAX_TREE_DEPTH = 400
DEFAULT_TIMEOUT = 0.5
CACHE_SIZE = 1024
# A parsed tree takes 750-950 bytes per node, and a source character makes from under one
# node ("trigger.id") to four (a list of numbers): counting nodes bounds the cache near 60 MB.
CACHE_NODES = 70_000


class Timeout(BaseException):
    """Stop an evaluation; a BaseException so that no `except Exception` in celpy swallows it."""


class BoundedEvaluator(Evaluator):
    """celpy's interpreter, checking a deadline at every tree node it visits."""

    def __init__(self, ast: lark.Tree, activation: Activation, deadline: float) -> None:
        super().__init__(ast, activation)
        self.deadline = deadline

    def visit(self, tree: lark.Tree) -> Any:
        if time.monotonic() > self.deadline:
            raise Timeout
        return super().visit(tree)

    def visit_children(self, tree: lark.Tree) -> list[Any]:
        if time.monotonic() > self.deadline:
            raise Timeout
        return super().visit_children(tree)

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        # Macro bodies run in sub-evaluators, so they must honour the same deadline.
        return BoundedEvaluator(ast, self.activation, self.deadline)
