"""Read lark parse trees of CEL: names, literals, positions, sizes and syntax problems."""

from __future__ import annotations

import re
from typing import Any

import celpy
import lark
from celpy.evaluation import celstr

from cloudfunctions.cel import messages as msg
from cloudfunctions.cel.errors import LIMIT, SYNTAX, CelProblem
from cloudfunctions.cel.limits import MAX_NESTING_DEPTH, MAX_SOURCE_LENGTH

_SURROGATE = re.compile("[\ud800-\udfff]")

TRIGGER = "trigger"
EVENTS = "events"
# Known in a step's Result only: the answer the step captured.
RESPONSE = "response"
CONTEXT_EVENT_PATH = "contextEventPath"
PASS_THROUGH = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication"}
    | {"unary", "member", "primary", "paren_expr"}
)


def check_size(source: str) -> CelProblem | None:
    if len(source) > MAX_SOURCE_LENGTH:
        return CelProblem(LIMIT, msg.TOO_LONG.format(length=len(source), limit=MAX_SOURCE_LENGTH))
    depth = 0
    line, column = 1, 0
    quote = ""
    index = 0
    length = len(source)
    # Skips string literals and comments so that brackets inside them do not count.
    while index < length:
        char = source[index]
        index += 1
        column += 1
        if char == "\n":
            line, column = line + 1, 0
            if quote and len(quote) == 1:
                quote = ""
            continue
        if quote:
            if char == "\\":
                index += 1
                column += 1
            elif source.startswith(quote, index - 1):
                index += len(quote) - 1
                column += len(quote) - 1
                quote = ""
            continue
        if char in "\"'":
            quote = char * 3 if source.startswith(char * 3, index - 1) else char
            index += len(quote) - 1
            column += len(quote) - 1
        elif char == "/" and source.startswith("/", index):
            newline = source.find("\n", index)
            skipped = (newline if newline >= 0 else length) - index
            index += skipped
            column += skipped
        elif char in "([{":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                return CelProblem(LIMIT, msg.TOO_DEEP.format(limit=MAX_NESTING_DEPTH), line, column)
        elif char in ")]}":
            depth = max(depth - 1, 0)
    return None


def string_literal_problem(ast: lark.Tree) -> CelProblem | None:
    """Refuse escapes the parser lets through: past U+10FFFF (celpy raises on them) or a lone
    surrogate, which cannot be encoded into a request, a page or a database row."""
    for token in ast.scan_values(
        lambda v: isinstance(v, lark.Token) and v.type in ("STRING_LIT", "MLSTRING_LIT")
    ):
        try:
            text = str(celstr(token))
        except ValueError:
            return CelProblem(SYNTAX, msg.BAD_ESCAPE, token.line, token.column)
        if _SURROGATE.search(text):
            return CelProblem(SYNTAX, msg.SURROGATE_ESCAPE, token.line, token.column)
    return None


def syntax_problem(source: str, error: celpy.CELParseError) -> CelProblem:
    cause = error.__context__
    line, column = error.line, error.column
    message = msg.UNEXPECTED_END
    if isinstance(cause, lark.exceptions.UnexpectedCharacters):
        char = source[cause.pos_in_stream] if cause.pos_in_stream < len(source) else ""
        if char in "\"'":
            message = msg.UNTERMINATED_STRING.format(quote=char)
        else:
            message = msg.UNEXPECTED_CHARACTER.format(char=quote_text(char))
    elif isinstance(cause, lark.exceptions.UnexpectedToken):
        token = cause.token
        if token.type == "$END":
            line, column = _end_position(source)
        else:
            message = msg.UNEXPECTED_TOKEN.format(token=quote_text(str(token.value)))
    if not isinstance(line, int) or line < 1:
        line, column = None, None
    return CelProblem(SYNTAX, message, line, column)


def _end_position(source: str) -> tuple[int, int]:
    stripped = source.rstrip()
    lines = stripped.split("\n") if stripped else [""]
    return len(lines), len(lines[-1]) + 1


def quote_text(text: str) -> str:
    text = text if len(text) <= 40 else text[:39] + "…"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tree_depth(tree: lark.Tree) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, lark.Tree))
    return deepest


def single_child_chain(tree: Any) -> Any:
    while (
        isinstance(tree, lark.Tree)
        and tree.data in PASS_THROUGH
        and len(tree.children) == 1
        and isinstance(tree.children[0], lark.Tree)
    ):
        tree = tree.children[0]
    return tree


def string_literal(tree: Any) -> tuple[str, lark.Token] | None:
    node = single_child_chain(tree)
    if isinstance(node, lark.Tree) and node.data == "literal" and node.children:
        token = node.children[0]
        if isinstance(token, lark.Token) and token.type in ("STRING_LIT", "MLSTRING_LIT"):
            return str(celstr(token)), token
    return None


def bare_ident(tree: Any) -> lark.Token | None:
    node = single_child_chain(tree)
    if isinstance(node, lark.Tree) and node.data == "ident":
        token = node.children[0]
        if isinstance(token, lark.Token):
            return token
    return None


def arguments_of(tree: lark.Tree, first: int) -> list[lark.Tree]:
    if len(tree.children) > first and isinstance(tree.children[first], lark.Tree):
        return [c for c in tree.children[first].children if isinstance(c, lark.Tree)]
    return []


def line_of(item: Any) -> int | None:
    if isinstance(item, lark.Token):
        return item.line
    meta = getattr(item, "meta", None)
    return getattr(meta, "line", None) if meta is not None else None


def column_of(item: Any) -> int | None:
    if isinstance(item, lark.Token):
        return item.column
    meta = getattr(item, "meta", None)
    return getattr(meta, "column", None) if meta is not None else None


def caret(source: str, line: int | None, column: int | None) -> str:
    """Return the source line `line` and, under it, a caret at `column` (both 1-based)."""
    if not line:
        return ""
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1]
    if not column:
        return text
    # Tabs are kept so the caret lines up in any tab width.
    padding = "".join("\t" if char == "\t" else " " for char in text[: column - 1])
    padding += " " * max(column - 1 - len(text), 0)
    return f"{text}\n{padding}^"
