"""A designer routes a 404 to its own event through the UI, tests, deploys and runs it."""

from __future__ import annotations

from django.core.management import call_command
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.factories import PASSWORD, ApiKeyConnectionFactory


def _step(page, name: str, uri: str, event: str) -> None:
    page.get_by_label("New step").fill(name)
    page.get_by_role("button", name="Add step").click()
    page.get_by_role("link", name="Configure cloud function").click()
    page.locator("#id_connection").select_option(label="Orders API")
    page.get_by_label("Method").select_option("GET")
    page.get_by_label("URI").fill(f'"{uri}"')
    page.locator("#id_completion_event_choice").select_option(label="Create a new event…")
    page.locator("#id_new_event_name").fill(event)


def _save(page) -> None:
    page.locator("#cloud-function").get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Cloud function saved.")).to_be_visible()


def _starts_on(page, event: str) -> None:
    page.get_by_label("Starts on").select_option(label=f"“{event}”")
    page.get_by_role("button", name="Set start").click()
    expect(page.get_by_text("Starts on saved.")).to_be_visible()


def test_a_404_routed_to_an_event_starts_one_step_and_skips_another(
    page, live_server, designer, outbound_tls, tls_httpserver
):
    tls_httpserver.expect_request("/orders/o_1").respond_with_json({"error": "no"}, status=404)
    tls_httpserver.expect_request("/orders").respond_with_json({"id": "o_1", "created": True})
    ApiKeyConnectionFactory(name="Orders API", base_url=tls_httpserver.url_for("/").rstrip("/"))
    sign_in(page, designer.username, PASSWORD)
    page.get_by_role("link", name="New process").click()
    page.get_by_label("Name").fill("Orders")
    page.get_by_role("button", name="Create process").click()

    _step(page, "Look up order", "/orders/o_1", "order found")
    outcomes = page.locator("fieldset#outcomes")
    outcomes.get_by_role("button", name="Add outcome").click()
    row = outcomes.locator(".outcome-row").last
    row.get_by_label("When").select_option("404")
    row.get_by_label("Completion event").select_option(label="Create a new event…")
    row.get_by_label("New event name").fill("order missing")
    _save(page)

    _step(page, "Create order", "/orders", "order created")
    _save(page)
    _starts_on(page, "order missing")
    _step(page, "Ship order", "/ship", "shipped")
    _save(page)
    _starts_on(page, "order found")

    page.get_by_role("link", name="Orders", exact=True).first.click()
    page.get_by_role("button", name="Test process").click()
    results = page.get_by_role("region", name="Last Test process")
    expect(results.get_by_role("article", name="1. Look up order")).to_contain_text(
        "emitted order missing"
    )
    expect(results.get_by_role("article", name="2. Create order").locator(".badge")).to_have_text(
        "Succeeded"
    )
    expect(results.get_by_role("article", name="3. Ship order").locator(".badge")).to_have_text(
        "Skipped"
    )

    page.get_by_role("link", name="Runs and deployments").click()
    page.get_by_role("button", name="Deploy").click()
    expect(page.get_by_text("Deployed version 1")).to_be_visible()
    page.get_by_role("button", name="Run now").click()
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    expect(page.locator("#run-status")).to_have_text("Succeeded", timeout=15_000)
    expect(page.get_by_role("article", name="1. Look up order")).to_contain_text(
        "emitted order missing"
    )
    ship = page.get_by_role("article", name="3. Ship order")
    expect(ship.locator(".badge")).to_have_text("Skipped")
    expect(ship).to_contain_text("it starts on “order found”, which this run did not emit")
