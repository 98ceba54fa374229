"""Static checks of a cloud function's fields: what makes a step incomplete, and where."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from django.conf import settings

from cloudfunctions import cel
from cloudfunctions.http.headers import HEADER_SET_WHEN_SENT, HEADERS_SET_WHEN_SENT
from cloudfunctions.http.url_builder import URI_HAS_BACKSLASH, URI_MUST_START_WITH_SLASH
from cloudfunctions.models import CloudFunction
from cloudfunctions.step import outcomes
from orchestration.jsontext import JSONTextError, parse_json

TIMEOUT_OUT_OF_RANGE = "Enter between 1 and {limit:g} seconds (the server's overall deadline)."


def deadline_seconds() -> float:
    return settings.OUTBOUND_DEADLINE_SECONDS


@dataclass(frozen=True)
class FieldProblem:
    field: str  # the label the designer sees, e.g. "URI" or "Header 2 key"
    message: str
    line: int | None = None
    column: int | None = None
    caret: str = ""

    def __str__(self) -> str:
        where = f" (line {self.line}, column {self.column})" if self.line else ""
        return f"{self.field}: {self.message}{where}"


def check_cel(
    source: str, *, field: str, known_events: Collection[str] | None, response: bool = False
) -> list[FieldProblem]:
    """Compile a CEL field and report syntax errors, unknown names and unknown events
    (`response` is a name in the Result field only)."""
    if not source.strip():
        return [FieldProblem(field, 'Enter a CEL expression, e.g. "/v1/charges".')]
    return [
        FieldProblem(
            field,
            p.message,
            p.line,
            p.column,
            cel.caret(source, p.line, p.column) if p.line else "",
        )
        for p in cel.check_expression(source, known_events=known_events, response=response)
    ]


def check_json_body(text: str) -> list[FieldProblem]:
    """Report the first JSON syntax error with its position."""
    if not text.strip():
        return []
    try:
        parse_json(text)
    except JSONTextError as exc:
        return [
            FieldProblem(
                "Body",
                f"Not valid JSON: {exc.msg}",
                exc.line,
                exc.column,
                cel.caret(text, exc.line, exc.column),
            )
        ]
    return []


def check_uri(source: str, *, known_events: Collection[str] | None) -> list[FieldProblem]:
    problems = check_cel(source, field="URI", known_events=known_events)
    if problems:
        return problems
    constant = cel.constant_value(source)
    if constant is not cel.NOT_CONSTANT:
        if not isinstance(constant, str):
            return [FieldProblem("URI", 'The URI must be a string expression, like "/v1/charges".')]
        # As the request is built (url_builder), so the live check and a run say the same.
        if "\\" in constant:
            return [FieldProblem("URI", URI_HAS_BACKSLASH)]
        if not constant.startswith("/"):
            return [FieldProblem("URI", URI_MUST_START_WITH_SLASH)]
    return []


def iter_problems(
    cf: CloudFunction, *, known_events: Collection[str] | None
) -> Iterator[FieldProblem]:
    """Yield every reason the cloud function cannot run yet."""
    if not cf.connection_id:
        yield FieldProblem("Connection", "Choose a connection.")
    yield from check_uri(cf.uri, known_events=known_events)
    for label, rows in (("Query parameter", cf.query_params), ("Header", cf.headers)):
        seen: set[str] = set()
        for number, row in enumerate(rows, start=1):
            for part in ("key", "value"):
                yield from check_cel(
                    row[part], field=f"{label} {number} {part}", known_events=known_events
                )
            if row["key"] in seen:
                yield FieldProblem(f"{label} {number} key", "This key is already used above.")
            seen.add(row["key"])
            name = cel.constant_value(row["key"]) if label == "Header" else None
            if isinstance(name, str) and name.lower() in HEADERS_SET_WHEN_SENT:
                yield FieldProblem(f"Header {number} key", HEADER_SET_WHEN_SENT.format(name=name))
    if cf.body_mode == CloudFunction.BodyMode.CEL:
        if cf.body.strip():
            yield from check_cel(cf.body, field="Body", known_events=known_events)
    else:
        yield from check_json_body(cf.body)
    if not cf.completion_event_id:
        yield FieldProblem("Completion event", "Select or create a completion event.")
    for number, row in enumerate(outcomes.rows_of(cf), start=1):
        if problem := outcomes.when_problem(row.when):
            yield FieldProblem(f"Outcome {number} when", problem)
    if cf.result.strip():
        yield from check_cel(cf.result, field="Result", known_events=known_events, response=True)
    if cf.timeout_seconds is not None and not 1 <= cf.timeout_seconds <= deadline_seconds():
        yield FieldProblem("Timeout", TIMEOUT_OUT_OF_RANGE.format(limit=deadline_seconds()))
