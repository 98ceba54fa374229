"""The keyboard journey: sign in, create a process and a step, configure it and Test it, with
Tab, Shift+Tab, Enter, Space and arrow keys only; focus is drawn at every stop."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, ApiKeyConnectionFactory

# The focus colours of app.css: 5.7:1 on white, 8:1 on the dark top bar (WCAG asks 3:1).
FOCUS_COLOURS = {"rgb(47, 95, 208)", "rgb(157, 184, 255)"}

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute("name"),
    text: (el.getAttribute("aria-label") || el.textContent || "").trim().slice(0, 60),
    outline: [style.outlineStyle, parseFloat(style.outlineWidth), style.outlineColor],
  };
}"""


class Keyboard:
    """Move focus with Tab only, and check that each stop draws the one focus style."""

    def __init__(self, page: Page):
        self.page = page
        self.presses = 0

    def focused(self) -> dict | None:
        return self.page.evaluate(FOCUSED)

    def tab_to(self, matches, limit: int = 60) -> dict:
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            self.presses += 1
            stop = self.focused()
            assert stop is not None, "focus fell to the page body"
            style, width, colour = stop["outline"]
            # main is focused by the skip link only to move the starting point; it is not a control.
            if stop["tag"] != "main":
                assert style != "none" and width >= 2 and colour in FOCUS_COLOURS, stop
            if matches(stop):
                return stop
        raise AssertionError(f"no focusable element matched within {limit} Tab presses")

    def skip_to_panel(self) -> None:
        """Past the steps sidebar: the second skip link, for keyboard users in an editor."""
        self.page.keyboard.press("Tab")
        self.page.keyboard.press("Tab")
        stop = self.focused()
        assert stop and stop["text"].startswith("Skip to the step"), stop
        self.page.keyboard.press("Enter")
        expect(self.page.locator("#panel")).to_be_focused()

    def skip_to_main(self) -> None:
        """Tab once: the skip link comes first; Enter moves the starting point to main."""
        if self.page.evaluate("location.hash") == "#main":
            # A form posted from a page at #main lands on the next one at #main (a redirect
            # keeps the fragment): the browser has already moved focus there.
            expect(self.page.locator("main")).to_be_focused()
            return
        self.page.keyboard.press("Tab")
        stop = self.focused()
        assert stop and stop["text"] == "Skip to main content", stop
        self.page.keyboard.press("Enter")
        expect(self.page.locator("main")).to_be_focused()


def _named(text: str):
    return lambda stop: stop["text"] == text


def _id(value: str):
    return lambda stop: stop["id"] == value


def _choose(page: Page, select_id: str, label: str, limit: int = 10) -> None:
    """Move a focused select to the option labelled `label` with the arrow keys."""
    select = page.locator(f"#{select_id}")
    expect(select).to_be_focused()
    for _ in range(limit):
        if select.evaluate("(s) => s.options[s.selectedIndex].text") == label:
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"{label!r} not reached with ArrowDown in #{select_id}")


@pytest.fixture
def api(outbound_tls, tls_httpserver):
    tls_httpserver.expect_request("/v1/charges", method="GET").respond_with_json({"id": "ch_1"})
    return ApiKeyConnectionFactory(
        name="Local API", base_url=tls_httpserver.url_for("/").rstrip("/")
    )


def test_keyboard_only_from_sign_in_to_a_test_result(page, live_server, designer, api):
    keys = Keyboard(page)
    page.goto("/login/")
    expect(page.get_by_label("Username")).to_be_focused()  # autofocus
    page.keyboard.type(designer.username)
    keys.tab_to(_id("id_password"))
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Processes")).to_be_visible()

    keys.skip_to_main()
    keys.tab_to(_named("New process"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="New process")).to_be_visible()
    keys.skip_to_main()
    keys.tab_to(_id("id_name"))
    page.keyboard.type("Keyboard journey")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keyboard journey")).to_be_visible()

    keys.skip_to_main()
    keys.tab_to(_id("new-step-name"))
    page.keyboard.type("Find charge")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Configure cloud function")).to_be_visible()
    keys.skip_to_main()
    keys.tab_to(_named("Configure cloud function"))
    page.keyboard.press("Enter")
    expect(page.get_by_label("URI")).to_be_visible()

    keys.skip_to_panel()
    before = keys.presses
    keys.tab_to(_id("id_name"))
    name_presses = keys.presses - before
    keys.tab_to(_id("id_provider"))
    _choose(page, "id_provider", "Custom")
    keys.tab_to(_id("id_connection"))
    _choose(page, "id_connection", "Local API")
    keys.tab_to(_id("id_uri"))
    page.keyboard.type('"/v1/charges"')
    expect(page.locator("#status-uri")).to_have_class(re.compile(r"\bok\b"))
    keys.tab_to(_id("id_completion_event_choice"))
    _choose(page, "id_completion_event_choice", "Create a new event…")
    keys.tab_to(_id("id_new_event_name"))
    page.keyboard.type("charge.found")
    keys.tab_to(_id("test-button"))
    page.keyboard.press("Space")

    result = page.locator("#test-result")
    expect(result).to_contain_text("Succeeded")
    expect(result).to_contain_text("HTTP 200")
    # Focus is back on Test (htmx disabled it while the request ran), and the result is read out.
    expect(page.locator("#test-button")).to_be_focused()
    expect(page.locator("#announcer")).to_contain_text("Result: Succeeded")
    expect(page.locator("#announcer")).to_contain_text("HTTP 200")
    # From the skip link, Name is a few presses away, not the ~19 it took through the page.
    assert name_presses <= 6, name_presses
