"""axe-core (WCAG 2.1 AA) and reflow on every page state a designer and an administrator reach.

axe-core runs inside Chromium through axe-playwright-python, which ships its own copy of
axe.min.js: nothing is fetched. Each test walks the states of one role at one viewport and
fails on the first walk with every violation listed (rule, target, summary), not only the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from orchestration.processes import services as process_services
from orchestration.runs import services as run_services
from tests.browser.conftest import htmx_settled, sign_in
from tests.factories import (
    PASSWORD,
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
    ProcessFactory,
    StepFactory,
)
from tests.orchestration.run_builders import deployed_process, work

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

SCROLLS_SIDEWAYS = """() => {
  const root = document.documentElement;
  const main = document.querySelector("main");
  // The page, and the content column: a card pushed past main's edge is cut off or overlaps.
  if (root.scrollWidth <= root.clientWidth && main.scrollWidth <= main.clientWidth) return null;
  // Name the widest elements, so a failure says what to fix.
  const wide = [...document.body.querySelectorAll("*")]
    .filter((el) => el.getBoundingClientRect().right > Math.min(
      root.clientWidth, main.getBoundingClientRect().right) + 0.5)
    .slice(-5)
    .map((el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${
      el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : ""
    } right=${Math.round(el.getBoundingClientRect().right)}`);
  return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
          mainScrollWidth: main.scrollWidth, mainClientWidth: main.clientWidth, wide};
}"""


# Every description a field points to exists; every help text and error list describes its
# field; a field with an error says so (aria-invalid) and shows it in its edge.
UNLINKED = """() => {
  const found = [];
  const name = (el) => el.id || el.name || el.tagName.toLowerCase();
  for (const el of document.querySelectorAll("[aria-describedby]")) {
    for (const id of el.getAttribute("aria-describedby").split(/\\s+/)) {
      if (id && !document.getElementById(id)) found.push(`${name(el)} points to a missing #${id}`);
    }
  }
  for (const text of document.querySelectorAll(".field .help:not(a), .errorlist")) {
    if (text.closest("fieldset[class~=rows]")) continue;  // the rows' shared hint
    if (!text.id || !document.querySelector(`[aria-describedby~="${text.id}"]`)) {
      found.push(`"${text.textContent.trim().slice(0, 40)}" describes no field`);
    }
  }
  for (const list of document.querySelectorAll(".errorlist[id$='_error']")) {
    const field = document.getElementById(list.id.slice(0, -"_error".length));
    if (!field) continue;
    if (field.getAttribute("aria-invalid") !== "true") found.push(`${name(field)} not aria-invalid`);
    if (getComputedStyle(field).borderTopColor !== "rgb(179, 38, 30)") {
      found.push(`${name(field)} has edge ${getComputedStyle(field).borderTopColor}`);
    }
  }
  return found;
}"""


@dataclass
class World:
    """The data every walk visits: a tested draft, a failed and a finished run."""

    process: object
    step: object
    bare: object
    deployed: object
    failed_run: object
    finished_run: object
    connection: object


@pytest.fixture
def world(outbound_tls, tls_httpserver, designer, admin_user) -> World:
    tls_httpserver.expect_request("/v1/charges").respond_with_json(
        {"id": "ch_42", "amount": 100, "note": "a-long-unbroken-value-" + "x" * 120}
    )
    tls_httpserver.expect_request("/v1/broken").respond_with_json({"error": "down"}, status=500)
    base_url = tls_httpserver.url_for("/").rstrip("/")
    connection = ApiKeyConnectionFactory(name="Local API", base_url=base_url)
    process = ProcessFactory(name="Refund", description="Refunds a charge, then notifies.")
    found = EventFactory(process=process, name="charge.found")
    step = StepFactory(process=process, name="Find charge", position=1)
    CloudFunctionFactory(
        step=step,
        connection=connection,
        method="GET",
        uri='"/v1/charges"',
        body="",
        completion_event=found,
    )
    second = StepFactory(process=process, name="Notify the customer", position=2)
    CloudFunctionFactory(
        step=second,
        connection=connection,
        method="GET",
        uri='"/v1/notify/" + events["charge.missing"].body.id',
        body="",
        completion_event=None,
    )
    bare = StepFactory(process=process, name="Not configured yet", position=3)
    process_services.step_refresh_problems(process=process)
    process_services.step_test_run(step=step, actor=designer)

    deployed = deployed_process(connection, '"/v1/charges"', '"/v1/broken"', max_attempts=1)
    failed = run_services.run_start(process=deployed, trigger="ui", input={"order": "o_9"})
    work(failed.pk)
    finished = run_services.run_start(process=deployed, trigger="webhook", input={})
    work(finished.pk)
    failed.refresh_from_db()
    return World(process, step, bare, deployed, failed, finished, connection)


State = tuple[str, Callable[[Page, World], None]]


def _goto(url: Callable[[World], str]) -> Callable[[Page, World], None]:
    def visit(page: Page, world: World) -> None:
        page.goto(url(world))
        htmx_settled(page)

    return visit


def _step_editor_tested(page: Page, world: World) -> None:
    page.goto(f"/processes/{world.process.pk}/steps/{world.step.pk}/")
    htmx_settled(page)
    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.locator("#test-result")).to_contain_text("HTTP 200")
    htmx_settled(page)
    page.locator("#test-result details").first.evaluate("(d) => { d.open = true; }")


def _step_editor_with_errors(page: Page, world: World) -> None:
    page.goto(f"/processes/{world.process.pk}/steps/{world.step.pk}/")
    htmx_settled(page)
    page.get_by_label("Completion event").select_option(label="Create a new event…")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#form-errors")).to_be_visible()
    htmx_settled(page)


def _process_create_with_errors(page: Page, world: World) -> None:
    page.goto("/processes/new/")
    page.get_by_role("button", name="Create process").click()
    expect(page.locator(".errorlist").first).to_be_visible()


def _connection_form_with_errors(page: Page, world: World) -> None:
    page.goto("/connections/new/")
    page.get_by_label("Cloud provider").select_option(label="Custom")
    expect(page.get_by_label("Base URL")).to_be_visible()
    htmx_settled(page)
    page.get_by_label("Base URL").fill("http://not-https.example")
    page.get_by_role("button", name="Save connection").click()
    expect(page.locator(".errorlist").first).to_be_visible()


def _connection_detail_tested(page: Page, world: World) -> None:
    page.goto(world.connection.get_absolute_url())
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result .badge")).to_be_visible()
    htmx_settled(page)


def _run_detail_open(page: Page, world: World) -> None:
    page.goto(world.failed_run.get_absolute_url())
    for details in page.locator("details").all():
        details.evaluate("(d) => { d.open = true; }")


SIGNED_OUT: list[State] = [
    ("sign-in", _goto(lambda w: "/login/")),
    ("404 signed out", _goto(lambda w: "/processes/999999/")),
]

SHARED: list[State] = [
    ("process list", _goto(lambda w: "/processes/")),
    ("process editor", _goto(lambda w: f"/processes/{w.process.pk}/")),
    ("deployed version", _goto(lambda w: f"/processes/{w.deployed.live_version_id}/")),
    ("connection list", _goto(lambda w: "/connections/")),
    ("runs list", _goto(lambda w: f"/processes/{w.deployed.pk}/runs/")),
    ("run detail (failed)", _run_detail_open),
    ("run detail (finished)", _goto(lambda w: w.finished_run.get_absolute_url())),
    ("404", _goto(lambda w: "/processes/999999/")),
]

DESIGNER: list[State] = [
    ("step editor with a Test result", _step_editor_tested),
    ("step editor with errors", _step_editor_with_errors),
    ("new process with errors", _process_create_with_errors),
    ("unconfigured step", _goto(lambda w: f"/processes/{w.process.pk}/steps/{w.bare.pk}/")),
    ("403 (connection form)", _goto(lambda w: "/connections/new/")),
]

ADMINISTRATOR: list[State] = [
    ("read-only step editor", _goto(lambda w: f"/processes/{w.process.pk}/steps/{w.step.pk}/")),
    ("connection form with errors", _connection_form_with_errors),
    ("connection detail with a test", _connection_detail_tested),
    ("connection edit", _goto(lambda w: f"/connections/{w.connection.pk}/edit/")),
    ("403 (new process)", _goto(lambda w: "/processes/new/")),
]


def _states(role: str) -> list[State]:
    if role == "signed out":
        return SIGNED_OUT
    own = DESIGNER if role == "designer" else ADMINISTRATOR
    return SHARED + own


def _sign_in(page: Page, role: str, designer, admin_user) -> None:
    if role == "designer":
        sign_in(page, designer.username, PASSWORD)
    elif role == "administrator":
        sign_in(page, admin_user.username, PASSWORD)
    if role != "signed out":
        expect(page.get_by_role("button", name="Sign out")).to_be_attached()


def _walk(page, role, designer, admin_user, world, check: Callable[[Page, str], list[str]]):
    _sign_in(page, role, designer, admin_user)
    found = []
    for name, visit in _states(role):
        visit(page, world)
        found += [f"[{name}] {line}" for line in check(page, name)]
    return found


def _axe_violations(page: Page, name: str) -> list[str]:
    lines = [f"unlinked: {line}" for line in page.evaluate(UNLINKED)]
    response = Axe().run(page, options=AXE_OPTIONS).response
    for violation in response["violations"]:
        for node in violation["nodes"]:
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(f"{violation['id']} {node['target']}: {summary}")
    return lines


ROLES = ["signed out", "designer", "administrator"]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
@pytest.mark.parametrize("role", ROLES)
def test_every_page_state_passes_axe_wcag21_aa(
    browser, live_server, world, designer, admin_user, role, viewport
):
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        found = _walk(page, role, designer, admin_user, world, _axe_violations)
    finally:
        context.close()
    assert not found, f"{len(found)} axe violation(s):\n" + "\n".join(found)


def _sideways(page: Page, name: str) -> list[str]:
    overflow = page.evaluate(SCROLLS_SIDEWAYS)
    return [] if overflow is None else [str(overflow)]


# 640 px wide is a 1280 px window at 200% zoom (WCAG 1.4.10 Reflow); at 1280 px a long
# value or status line once pushed the step editor's card past the content column.
@pytest.mark.parametrize("width", [390, 320, 640, 1280])
@pytest.mark.parametrize("role", ROLES)
def test_no_page_scrolls_sideways(browser, live_server, world, designer, admin_user, role, width):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 800}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        found = _walk(page, role, designer, admin_user, world, _sideways)
    finally:
        context.close()
    assert not found, f"pages wider than {width} px:\n" + "\n".join(found)
