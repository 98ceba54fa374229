"""A designer builds, tests and maps a two-step process through the UI alone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from orchestration.web.roles import CONNECTION_ADMINS, DESIGNERS
from tests.browser.conftest import htmx_settled, sign_in
from tests.cloudfunctions.factories import ApiKeyConnectionFactory, StepFactory
from tests.factories import PASSWORD, UserFactory


def _add_row(page, legend: str, key: str, value: str) -> None:
    rows = page.locator("fieldset.rows", has=page.locator(f"legend:text-is('{legend}')"))
    rows.get_by_role("button", name=re.compile("^Add")).click()
    row = rows.locator(".kv-row").last
    row.get_by_label("Key").fill(key)
    row.get_by_label("Value").fill(value)


def _new_step(page, name: str) -> None:
    page.get_by_label("New step").fill(name)
    page.get_by_role("button", name="Add step").click()
    page.get_by_role("link", name="Configure cloud function").click()


def test_designer_builds_a_two_step_process(page, live_server, designer, outbound_tls):
    connection = ApiKeyConnectionFactory(name="Payments API")
    sign_in(page, designer.username, PASSWORD)
    page.get_by_role("link", name="New process").click()
    page.get_by_label("Name").fill("Charge customer")
    page.get_by_role("button", name="Create process").click()

    _new_step(page, "Create charge")
    page.get_by_label("Name", exact=True).fill("Create charge")
    page.get_by_label("Cloud provider").select_option(label="Custom")
    page.get_by_label("Connection", exact=True).select_option(label=connection.name)
    page.get_by_label("Method").select_option("POST")
    uri = page.get_by_label("URI")
    uri.fill('"/v1/charges')
    expect(page.locator("#status-uri")).to_contain_text("line 1")  # live CEL check
    uri.fill('"/v1/charges"')
    expect(page.locator("#status-uri")).to_have_class(re.compile(r"\bok\b"))
    _add_row(page, "Query parameters", '"environment"', '"production"')
    _add_row(page, "Headers", '"Content-Type"', '"application/json"')
    page.get_by_label("Body", exact=True).fill(
        '{\n  "customer_name": "John Doe",\n  "priority": "High"\n}'
    )
    page.get_by_label("Completion event").select_option(label="Create a new event…")
    page.get_by_label("New event name").fill("charge.created")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Cloud function saved.")).to_be_visible()

    _new_step(page, "Notify")
    page.get_by_label("Connection", exact=True).select_option(label=connection.name)
    page.get_by_label("URI").fill('"/v1/notify/" + events["charge.created"].body.id')
    expect(page.locator("#status-uri")).to_contain_text("ok")
    page.get_by_label("URI").fill('"/v1/notify/" + events["charge.missing"].body.id')
    expect(page.locator("#status-uri")).to_contain_text("charge.missing")
    page.get_by_label("URI").fill('"/v1/notify/" + events["charge.created"].body.id')
    page.get_by_label("Completion event").select_option(label="Create a new event…")
    page.get_by_label("New event name").fill("customer.notified")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Cloud function saved.")).to_be_visible()

    page.reload()
    expect(page.get_by_label("URI")).to_have_value(
        '"/v1/notify/" + events["charge.created"].body.id'
    )
    page.get_by_role("link", name="1. Create charge").click()
    expect(page.get_by_label("URI")).to_have_value('"/v1/charges"')
    expect(page.get_by_label("Method")).to_have_value("POST")
    query = page.locator("fieldset.rows", has=page.locator("legend:text-is('Query parameters')"))
    expect(query.get_by_label("Key")).to_have_value('"environment"')
    expect(query.get_by_label("Value")).to_have_value('"production"')
    headers = page.locator("fieldset.rows", has=page.locator("legend:text-is('Headers')"))
    expect(headers.get_by_label("Key")).to_have_value('"Content-Type"')
    expect(page.get_by_label("Body", exact=True)).to_have_value(
        '{\n  "customer_name": "John Doe",\n  "priority": "High"\n}'
    )
    expect(page.get_by_label("Completion event")).to_have_value(re.compile(r"^\d+$"))
    expect(page.locator("#id_completion_event_choice option:checked")).to_have_text(
        "charge.created"
    )


@pytest.fixture
def charges_api(outbound_tls, tls_httpserver):
    tls_httpserver.expect_request("/v1/charges", method="GET").respond_with_json(
        {"id": "ch_42", "amount": 100}
    )
    tls_httpserver.expect_request("/v1/refunds/ch_42").respond_with_json({"refund": "re_1"})
    return ApiKeyConnectionFactory(
        name="Local API", base_url=tls_httpserver.url_for("/").rstrip("/")
    )


def test_test_button_captures_and_maps_into_the_next_step(page, live_server, designer, charges_api):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, designer.username, PASSWORD)
    page.get_by_role("link", name="New process").click()
    page.get_by_label("Name").fill("Refund")
    page.get_by_role("button", name="Create process").click()

    _new_step(page, "Find charge")
    page.get_by_label("Connection", exact=True).select_option(label="Local API")
    page.get_by_label("URI").fill('"/v1/charges"')
    page.get_by_label("Completion event").select_option(label="Create a new event…")
    page.get_by_label("New event name").fill("charge.found")
    page.get_by_role("button", name="Test", exact=True).click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("Succeeded")
    expect(result).to_contain_text("HTTP 200")
    path = 'events["charge.found"].body.id'
    expect(result.locator("code.path", has_text=path)).to_be_visible()
    expect(result).to_contain_text('"ch_42"')
    result.get_by_role("button", name=f"Copy path {path}").click()

    _new_step(page, "Refund it")
    page.get_by_label("Connection", exact=True).select_option(label="Local API")
    uri = page.get_by_label("URI")
    uri.fill('"/v1/refunds/" + ')
    uri.press("End")
    uri.press("Control+V")
    expect(uri).to_have_value('"/v1/refunds/" + ' + path)
    expect(page.locator("#status-uri")).to_contain_text('"/v1/refunds/ch_42"')
    page.get_by_role("button", name="Test", exact=True).click()
    expect(page.locator("#test-result")).to_contain_text("Succeeded")
    expect(page.locator("#test-result")).to_contain_text('"re_1"')


def test_a_designer_who_is_also_an_administrator_creates_a_connection_inline(page, live_server):
    user = UserFactory(username="both", roles=[DESIGNERS, CONNECTION_ADMINS])
    step = StepFactory(name="Call")
    sign_in(page, user.username, PASSWORD)
    page.goto(f"/processes/{step.process_id}/steps/{step.pk}/?configure=1")
    page.get_by_role("link", name="New connection…").click()
    inline = page.locator("#inline-connection")
    inline.get_by_label("Connection name").fill("Inline API")
    htmx_settled(page)
    inline.get_by_label("Cloud provider").select_option(label="Custom")
    inline.get_by_label("Base URL").fill("https://api.example.com")
    inline.get_by_label("Name", exact=True).fill("x-api-key")
    inline.get_by_label("Value").fill("inline-secret-value")
    inline.get_by_role("button", name="Create connection").click()
    expect(page.get_by_text("Connection “Inline API” created and selected above.")).to_be_visible()
    expect(page.locator("#id_connection option:checked")).to_have_text("Inline API")
    assert "inline-secret-value" not in page.content()


def test_enter_in_a_field_saves_and_rows_are_added_without_javascript(
    browser, live_server, designer
):
    # Enter submits through the form's first submit button: that must be Save, not one of
    # the helpers above it ("Fill", "Import") or the rows' "Add" buttons.
    connection = ApiKeyConnectionFactory(name="Payments API")
    step = StepFactory(name="Call")
    for javascript in (True, False):
        context = browser.new_context(base_url=live_server.url, java_script_enabled=javascript)
        context.set_default_timeout(10_000)
        page = context.new_page()
        sign_in(page, designer.username, PASSWORD)
        page.goto(f"/processes/{step.process_id}/steps/{step.pk}/?configure=1")
        if not javascript:
            page.get_by_role("button", name="Add header").click()  # the server adds it
            expect(page.locator("#headers-rows .kv-row")).to_have_count(1)
        page.get_by_label("Cloud provider").select_option(label="Custom")
        page.get_by_label("Connection", exact=True).select_option(label=connection.name)
        page.get_by_label("URI").fill(f'"/v1/{javascript}"')
        page.get_by_label("URI").press("Enter")
        expect(page.get_by_text("Cloud function saved.")).to_be_visible()
        context.close()
        step.refresh_from_db()
        assert step.cloud_function.uri == f'"/v1/{javascript}"'
