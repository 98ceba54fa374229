"""Content-Security-Policy: a nonce for our scripts, nothing inline, no framing; the editor
runs in a real browser without a single violation."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import Client
from django.urls import reverse

from tests.browser.conftest import CHROMIUM, sign_in
from tests.factories import PASSWORD, ApiKeyConnectionFactory, CloudFunctionFactory

pytestmark = pytest.mark.django_db

EXPECTED = {
    "default-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


def _policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in header.split(";"))
        if part
    }


@pytest.mark.parametrize(
    "path, signed_in",
    [("/login/", False), ("/processes/", True), ("/connections/", True), ("/nope/", True)],
)
def test_every_page_has_the_policy_and_its_scripts_carry_the_nonce(designer, path, signed_in):
    client = Client()
    if signed_in:
        client.force_login(designer)
    response = client.get(path)
    policy = _policy(response)
    for directive, value in EXPECTED.items():
        assert policy[directive] == value, directive
    html = response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    for tag in scripts:
        assert 'src="/static/' in tag, tag
    assert "<style" not in html
    if response.status_code == 200 and "<html" in html:
        assert scripts
        match = re.fullmatch(r"'self' 'nonce-([A-Za-z0-9+/=]+)'", policy["script-src"])
        assert f'nonce="{match.group(1)}"' in html  # htmx


def test_the_nonce_changes_per_response(designer_client):
    first = _policy(designer_client.get("/processes/"))["script-src"]
    second = _policy(designer_client.get("/processes/"))["script-src"]
    assert first != second


def test_htmx_is_told_not_to_inject_styles(designer_client):
    html = designer_client.get("/processes/").content.decode()
    assert """<meta name="htmx-config" content='{"includeIndicatorStyles": false}'>""" in html


def _browse_step_editor(base_url: str, username: str, editor_path: str) -> dict:
    """Sign in, open the step editor and type into it; return what the browser reported."""
    from playwright.sync_api import sync_playwright

    found: dict = {"console": [], "events": [], "indicator_styles": None}
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = chromium.new_context(base_url=base_url)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                found["console"].append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        # Also catch violations the console may not report, from the page's first script on.
        page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation',"
            " e => window.__csp.push([e.violatedDirective, e.blockedURI, e.sourceFile,"
            " e.lineNumber, e.sample].join(' ')));"
        )
        sign_in(page, username, PASSWORD)
        page.wait_for_load_state()
        # Only the step editor's own load counts; see test_no_template_has_inline_styles.
        found["console"].clear()
        page.goto(editor_path)
        uri = page.get_by_label("URI")
        uri.fill('"/v1/charges')
        page.locator("#status-uri").filter(has_text="line 1").wait_for()  # htmx works
        uri.fill('"/v1/charges"')
        page.locator("#status-uri.ok").wait_for()
        found["indicator_styles"] = page.evaluate("window.htmx.config.includeIndicatorStyles")
        found["events"] = page.evaluate("window.__csp")
        chromium.close()
    return found


@pytest.mark.browser
def test_step_editor_runs_without_csp_violations(live_server, designer, outbound_tls):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium not found at {CHROMIUM}; REQUIRE_BROWSER=1")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    cf = CloudFunctionFactory(connection=ApiKeyConnectionFactory(name="Payments"))
    path = reverse("step-editor", args=[cf.step.process_id, cf.step.pk])
    # Its own thread: Playwright's sync API refuses to start where tests/browser's
    # session-wide instance already runs an event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        found = pool.submit(_browse_step_editor, live_server.url, designer.username, path)
        found = found.result(timeout=60)
    assert found["indicator_styles"] is False
    assert found["events"] == []
    assert found["console"] == []


def test_no_template_has_inline_styles():
    from django.conf import settings

    found = [
        f"{path.relative_to(settings.BASE_DIR)}:{number}"
        for path in (settings.BASE_DIR / "templates").rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\sstyle=|<style", line)
    ]
    assert found == []
