"""A newcomer's first Test: the demo step, against the demo API that scripts/run starts.

``DEMO_SCREENSHOT=path.png`` also saves what the test saw (scripts/screenshots does so for
the README).
"""

from __future__ import annotations

import os
import re

from django.core.management import call_command
from playwright.sync_api import expect

from cloudfunctions.demo import DEMO_PROCESS, DEMO_USERS
from orchestration.web.roles import CONNECTION_ADMINS, DESIGNERS, role_group
from tests.browser.conftest import sign_in
from tests.demo_api import *  # noqa: F403  (the demo_api and demo_api_settings fixtures)


def test_the_designer_tests_the_demo_step_and_sees_it_succeed(page, live_server, demo_api_settings):
    # The roles' groups come from a migration, which a live server's flush has emptied.
    for role in (DESIGNERS, CONNECTION_ADMINS):
        role_group(role)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    username, password, _ = DEMO_USERS[0]
    page.set_viewport_size({"width": 1100, "height": 900})
    sign_in(page, username, password)
    page.get_by_role("link", name=DEMO_PROCESS, exact=True).click()
    page.get_by_role("link", name="1. Find customer").click()
    page.get_by_role("button", name="Test", exact=True).click()

    result = page.locator("#test-result")
    expect(result.locator(".badge")).to_have_text("Succeeded")
    # The template's line: the badge, then "HTTP 200 · <ms> ms · <when>".
    expect(result).to_contain_text(re.compile(r"Succeeded\s+HTTP 200 ·"))
    tree = result.get_by_role("list", name="Captured variables")
    path = 'events["customer.found"].body.args.customer'
    expect(tree.locator("code.path", has_text=path)).to_be_visible()
    expect(tree).to_contain_text('"cus_42"')
    expect(tree).to_contain_text("••••••")  # the API key the demo API echoes, masked

    if target := os.environ.get("DEMO_SCREENSHOT"):
        _screenshot(page, target)


def _screenshot(page, target: str) -> None:
    """Save the Test button, the result and the top of the captured tree: a small picture."""
    button = page.locator("#test-button")
    button.evaluate("e => window.scrollTo(0, e.getBoundingClientRect().top + scrollY - 24)")
    top = button.bounding_box()
    box = page.locator("#test-result").bounding_box()
    clip = {"x": box["x"] - 24, "y": top["y"] - 10, "width": box["width"] + 48, "height": 560}
    page.screenshot(path=target, clip=clip)


def test_the_step_editor_shows_form_and_input_panel_without_overlap(
    page, live_server, demo_api_settings
):
    """Both panes at a desktop and a phone size; SCREENSHOTS_DIR saves them for the README."""
    for role in (DESIGNERS, CONNECTION_ADMINS):
        role_group(role)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    username, password, _ = DEMO_USERS[0]
    sign_in(page, username, password)
    page.get_by_role("link", name=DEMO_PROCESS, exact=True).click()
    page.get_by_role("link", name="2. Create charge").click()
    form, panel = page.locator("#cloud-function"), page.locator("aside.input-panel")
    for width, height, side_by_side in ((1440, 900, True), (390, 844, False)):
        page.set_viewport_size({"width": width, "height": height})
        expect(panel).to_be_visible()
        b = panel.bounding_box()
        # Every control of the form, not only its box: a grid column narrower than its
        # content lets fields run under the panel.
        right, bottom = page.evaluate(
            """() => [...document.querySelectorAll('#cloud-function :is(input, select, textarea)')]
                 .filter(e => e.type !== 'hidden' && e.offsetParent)
                 .map(e => e.getBoundingClientRect())
                 .reduce(([r, b], x) => [Math.max(r, x.right), Math.max(b, x.bottom)], [0, 0])"""
        )
        if side_by_side:
            assert right <= b["x"], (right, b)  # the panel to the right
        else:
            assert form.bounding_box()["y"] < b["y"], b  # the panel below the form
        if folder := os.environ.get("SCREENSHOTS_DIR"):
            page.screenshot(path=os.path.join(folder, f"step-editor-{width}x{height}.png"))
