"""Outcome routing: which completion event an answer emits, or whether it fails the run.

Rows are ordered, as the designer lists them, and the first that matches wins, exact codes
before classes (a "404" row is more specific than a "4xx" row wherever it stands). The
seed's single completion event is the 2xx row. A connection error or timeout matches only
the "error" row. Retries happen before routing: the engine retries while the answer is
retryable and attempts remain, and routes the last attempt's answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from cloudfunctions import cel
from orchestration.processes.step_kinds import StepResult

CONNECTION_ERROR = "error"
CLASSES = ("2xx", "3xx", "4xx", "5xx")
# The stages of a failure that never reached an answer: the "Connection error or timeout" row.
CONNECTION_STAGES = frozenset({"timeout", "connect", "dns", "tls", "protocol", "ssrf"})
EXACT_CODE = re.compile(r"^[1-5][0-9][0-9]$")

WHEN_INVALID = 'When must be 2xx, 3xx, 4xx, 5xx, an HTTP status code such as 404, or "error".'
ROUTED_TO_FAIL = "{message} (routed to Fail the run)"


@dataclass(frozen=True)
class Outcome:
    """One row: when an answer matches `when`, emit `event`; with no event, fail the run."""

    when: str
    event: str | None = None


def when_problem(when: str) -> str | None:
    """Why a When value cannot match anything, or None."""
    if when in CLASSES or when == CONNECTION_ERROR or EXACT_CODE.match(when):
        return None
    return WHEN_INVALID


def _matching(rows: list[Outcome], result: StepResult) -> Outcome | None:
    status = (result.payload or {}).get("status") if result.payload else None
    if isinstance(status, int):
        exact = next((r for r in rows if r.when == str(status)), None)
        return exact or next((r for r in rows if r.when == f"{status // 100}xx"), None)
    if result.error_stage in CONNECTION_STAGES:
        return next((r for r in rows if r.when == CONNECTION_ERROR), None)
    return None  # a CEL, auth or configuration problem: no answer to route


def route(result: StepResult, rows: list[Outcome], *, success_event: str | None) -> StepResult:
    """Return the result with its completion event chosen, or as a failure of the run."""
    table = [*rows]
    if success_event and not any(r.when == "2xx" for r in rows):
        table.append(Outcome("2xx", success_event))  # the seed's completion event
    row = _matching(table, result)
    if row is None:
        return result  # today's behaviour: below 400 emits the step's event, else it fails
    if row.event is None:
        message = result.error_message or f"HTTP {(result.payload or {}).get('status')}"
        return replace(
            result,
            ok=False,
            event=None,
            error_stage=result.error_stage or "http",
            error_message=ROUTED_TO_FAIL.format(message=message),
        )
    payload = result.payload
    if payload is None:  # a connection error routed to an event: say what happened
        payload = {"error": result.error_message, "stage": result.error_stage}
    return replace(
        result, ok=True, event=row.event, payload=payload, error_stage="", error_message=""
    )


RESULT_FAILED = "Result: {message}"


def shaped(result: StepResult, expression: str, *, context: dict) -> StepResult:
    """Return the result carrying what its Result expression makes of the captured answer."""
    try:
        value = cel.evaluate(
            expression,
            trigger=context.get("trigger") or {},
            events=context.get("events") or {},
            response=result.payload or {},
            field="Result",
        )
    except cel.CelError as error:
        return replace(
            result,
            ok=False,
            event=None,
            error_stage="cel",
            error_message=RESULT_FAILED.format(message=error.message),
        )
    return replace(result, payload=value)


def rows_of(cf) -> list[Outcome]:
    """The cloud function's outcome routes as rows (what was stored, shapes checked)."""
    rows = []
    for row in cf.outcomes or []:
        if isinstance(row, dict) and isinstance(row.get("when"), str):
            event = row.get("event")
            rows.append(Outcome(row["when"], event if isinstance(event, str) else None))
    return rows
