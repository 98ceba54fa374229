"""A designer builds, tests and maps a two-step process through the UI alone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from orchestration.web.roles import CONNECTION_ADMINS, DESIGNERS
from tests.browser.conftest import htmx_settled, sign_in
from tests.factories import PASSWORD, ApiKeyConnectionFactory, StepFactory, UserFactory


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


TAKEN = "taken.event"
REDRAWS = ["save", "test", "fill", "import_curl", "add_row"]


def _shown_rows(page, prefix: str) -> list[tuple[str, str]]:
    rows = page.locator(f"#{prefix}-rows .kv-row")
    return [
        (
            rows.nth(i).get_by_label("Key").input_value(),
            rows.nth(i).get_by_label("Value").input_value(),
        )
        for i in range(rows.count())
    ]


@pytest.fixture
def echo_api(outbound_tls, tls_httpserver):
    tls_httpserver.expect_request("/echo").respond_with_json({"ok": True})
    return ApiKeyConnectionFactory(
        name="Echo API", base_url=tls_httpserver.url_for("/").rstrip("/")
    )


@pytest.mark.parametrize("action", REDRAWS)
def test_a_refused_name_then_a_fix_keeps_every_row_through_each_redraw(
    browser, live_server, designer, echo_api, action
):
    """The rows-lost journey: rows, a refused new event name, a redraw, the fix, a reload."""
    from cloudfunctions.step.editor import SAVED, SAVED_WITH_PROBLEMS
    from tests.factories import (
        AmazonConnectionFactory,
        CloudFunctionFactory,
        EventFactory,
    )

    amazon = AmazonConnectionFactory(name="Contact centre")
    other = CloudFunctionFactory(completion_event=None, step__name="Earlier")
    other.completion_event = EventFactory(process=other.step.process, name=TAKEN)
    other.save()
    step = StepFactory(process=other.step.process, name="Call")
    # Without JavaScript "Add header" asks the server, which redraws the form with one more.
    context = browser.new_context(base_url=live_server.url, java_script_enabled=action != "add_row")
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, designer.username, PASSWORD)
    page.goto(f"/processes/{step.process_id}/steps/{step.pk}/?configure=1")
    connection = amazon if action == "fill" else echo_api
    page.get_by_label("Connection", exact=True).select_option(label=connection.name)
    page.get_by_label("Method").select_option("GET")
    page.get_by_label("URI").fill('"/echo"')
    if action == "add_row":
        for legend in ("Add query parameter", "Add header"):
            page.get_by_role("button", name=legend).click()
        rows = page.locator(".kv-row")
        for i, (key, value) in enumerate(
            [('"environment"', '"production"'), ('"x-trace"', '"t-1"')]
        ):
            rows.nth(i).get_by_label("Key").fill(key)
            rows.nth(i).get_by_label("Value").fill(value)
    else:
        _add_row(page, "Query parameters", '"environment"', '"production"')
        _add_row(page, "Headers", '"x-trace"', '"t-1"')
    page.get_by_label("Completion event").select_option(label="Create a new event…")
    page.get_by_label("New event name").fill(TAKEN)

    # Save with the refused name first: the rows are then stored, and each redraw after it
    # posts them again (what lost them was a second Save of rows equal to the stored ones).
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(SAVED_WITH_PROBLEMS)).to_be_visible()
    expect(page.locator("#form-errors")).to_contain_text("already exists; pick it instead")
    expect(page.get_by_label("New event name")).to_have_value(TAKEN)
    if action == "test":
        page.get_by_role("button", name="Test", exact=True).click()
        expect(page.locator("#test-result")).to_contain_text("Succeeded")
    elif action == "fill":
        page.locator("details.helpers > summary").click()
        page.get_by_label("Amazon Connect operation").fill("StartOutboundVoiceContact")
        page.get_by_role("button", name="Fill", exact=True).click()
        expect(page.get_by_text("Filled in below")).to_be_visible()
    elif action == "import_curl":
        page.locator("details.helpers > summary").click()
        page.get_by_label("Import cURL").fill(
            f"curl '{echo_api.base_url}/echo?environment=production&page=2' -H 'x-trace: t-2'"
        )
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page.get_by_text("Filled in below")).to_be_visible()
    elif action == "add_row":
        page.get_by_role("button", name="Add header").click()  # the server redraws
        new = page.locator("#headers-rows .kv-row").last
        new.get_by_label("Key").fill('"x-more"')
        new.get_by_label("Value").fill('"m"')
    query, headers, uri = (
        _shown_rows(page, "query"),
        _shown_rows(page, "headers"),
        page.get_by_label("URI").input_value(),
    )
    assert action == "fill" or (query and headers)  # the operation asks for no rows
    # What is stored is what was typed at the last Save (Test saves too): seen in a new tab.
    stored = context.new_page()
    stored.goto(f"/processes/{step.process_id}/steps/{step.pk}/")
    typed = [('"environment"', '"production"')], [('"x-trace"', '"t-1"')]
    assert (_shown_rows(stored, "query"), _shown_rows(stored, "headers")) == typed
    stored.close()
    if action not in ("fill", "import_curl"):
        assert query[0] == ('"environment"', '"production"') and headers[0] == (
            '"x-trace"',
            '"t-1"',
        )

    page.get_by_label("Completion event").select_option(label="Create a new event…")
    page.get_by_label("New event name").fill("charge.done")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(SAVED)).to_be_visible()
    page.reload()
    assert _shown_rows(page, "query") == query
    assert _shown_rows(page, "headers") == headers
    expect(page.get_by_label("URI")).to_have_value(uri)
    expect(page.locator("#id_completion_event_choice option:checked")).to_have_text("charge.done")
    context.close()


def test_every_hidden_control_is_out_of_sight(page, live_server):
    # The default-submit button is `hidden`; `button {display:inline-block}` drew it anyway
    # as a full-width "Save" bar above Name (step editor) and Connection name (connection form).
    user = UserFactory(username="both", roles=[DESIGNERS, CONNECTION_ADMINS])
    step = StepFactory(name="Call")
    sign_in(page, user.username, PASSWORD)
    for url in (f"/processes/{step.process_id}/steps/{step.pk}/?configure=1", "/connections/new/"):
        page.goto(url)
        hidden = page.locator("[hidden]")
        assert hidden.count() >= 1, url
        shown = page.evaluate(
            """() => [...document.querySelectorAll('[hidden]')]
                 .filter(e => getComputedStyle(e).display !== 'none' || e.getClientRects().length)
                 .map(e => e.outerHTML.slice(0, 80))"""
        )
        assert shown == [], (url, shown)


def test_opening_a_step_with_many_rows_makes_one_document_request(page, live_server, designer):
    from tests.factories import CloudFunctionFactory

    rows = [{"key": f'"k{i}"', "value": f'"v{i}"'} for i in range(10)]
    cf = CloudFunctionFactory(query_params=rows, headers=rows)
    sign_in(page, designer.username, PASSWORD)
    requests: list[tuple[str, str]] = []
    page.on("request", lambda request: requests.append((request.resource_type, request.url)))
    page.goto(f"/processes/{cf.step.process_id}/steps/{cf.step.pk}/")
    page.wait_for_load_state("networkidle")
    expect(page.locator(".kv-row")).to_have_count(20)
    documents = [url for kind, url in requests if kind == "document"]
    others = [url for kind, url in requests if kind not in ("document", "stylesheet", "script")]
    assert len(documents) == 1 and others == [], requests  # no live check at page load
    assert all("/static/" in url for kind, url in requests if kind != "document")


def test_a_missing_quote_is_fixed_in_one_click(page, live_server, designer):
    step = StepFactory(name="Call")
    sign_in(page, designer.username, PASSWORD)
    page.goto(f"/processes/{step.process_id}/steps/{step.pk}/?configure=1")
    expect(page.locator("#status-uri")).to_have_text("")  # neutral until typed
    page.get_by_label("URI").fill("/v1/orders/")
    page.get_by_role("button", name='Did you mean "/v1/orders/"?').click()
    expect(page.get_by_label("URI")).to_have_value('"/v1/orders/"')
    expect(page.locator("#status-uri")).to_have_class(re.compile(r"\bok\b"))
    expect(page.get_by_label("URI")).to_have_attribute("aria-describedby", re.compile("status-uri"))


def test_leaving_with_unsaved_changes_asks_first(page, live_server, designer):
    step = StepFactory(name="Call")
    sign_in(page, designer.username, PASSWORD)
    page.goto(f"/processes/{step.process_id}/steps/{step.pk}/?configure=1")
    dialogs: list[str] = []

    def dismiss(dialog):
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.get_by_label("URI").fill('"/v1/typed"')
    page.close(run_before_unload=True)
    expect(page.get_by_label("URI")).to_have_value('"/v1/typed"')  # still here
    assert dialogs == ["beforeunload"]
    page.get_by_role("button", name="Save", exact=True).click()  # a Save leaves without asking
    expect(page.get_by_text("Cloud function saved.")).to_be_visible()
    page.close(run_before_unload=True)
    assert dialogs == ["beforeunload"]


def test_a_value_clicked_in_the_input_panel_goes_in_at_the_caret(
    page, live_server, designer, charges_api
):
    from orchestration.models import StepRun
    from tests.factories import CloudFunctionFactory, EventFactory

    first = CloudFunctionFactory(connection=charges_api, completion_event=None)
    first.completion_event = EventFactory(process=first.step.process, name="charge.found")
    first.save()
    StepRun.objects.create(
        step=first.step, outcome="succeeded", captured={"status": 200, "body": {"id": "ch_42"}}
    )
    later = CloudFunctionFactory(
        step=StepFactory(process=first.step.process, position=first.step.position + 1),
        connection=charges_api,
        method="GET",
        uri='"/v1/refunds/" +  + ""',
    )
    sign_in(page, designer.username, PASSWORD)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/processes/{later.step.process_id}/steps/{later.step.pk}/")
    panel = page.get_by_role("complementary", name="Input")
    expect(panel).to_be_visible()
    uri = page.get_by_label("URI")
    uri.click()
    uri.evaluate("field => field.setSelectionRange(17, 17)")  # after '"/v1/refunds/" + '
    leaf = panel.get_by_role("button", name=re.compile("^id: "))
    leaf.focus()
    leaf.press("Enter")  # keyboard: Enter on the value inserts it
    expect(uri).to_have_value('"/v1/refunds/" + events["charge.found"].body.id + ""')
    form_box, panel_box = page.locator("#cloud-function").bounding_box(), panel.bounding_box()
    assert form_box["x"] + form_box["width"] <= panel_box["x"]  # side by side, no overlap
    page.get_by_role("button", name="Test", exact=True).click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("Succeeded")
    expect(result).to_contain_text('"re_1"')
    result.get_by_text("Request as sent").click()
    expect(result).to_contain_text("/v1/refunds/ch_42")
