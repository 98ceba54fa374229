"""A Connection administrator creates an OAuth 2.0 connection and tests it, in a real browser."""

from __future__ import annotations

from playwright.sync_api import expect

from cloudfunctions.models import Connection
from tests.browser.conftest import htmx_settled, sign_in
from tests.factories import PASSWORD


def test_admin_creates_an_oauth_connection_and_tests_it(
    page, live_server, admin_user, outbound_tls, oauth_token_server
):
    base_url = oauth_token_server.resource_url.removesuffix("/api/resource")
    secret = oauth_token_server.client_secret
    sign_in(page, admin_user.username, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Connections").click()
    page.get_by_role("link", name="New connection").click()

    page.get_by_label("Connection name").fill("Loopback OAuth")
    page.get_by_label("Cloud provider").select_option(label="Custom")
    expect(page.get_by_label("Base URL")).to_be_visible()  # swapped in by htmx
    page.get_by_label("Base URL").fill(base_url)
    htmx_settled(page)
    page.get_by_label("Authentication type").select_option(label="OAuth 2.0")
    expect(page.get_by_label("Client ID")).to_be_visible()  # swapped again
    expect(page.get_by_label("Base URL")).to_have_value(base_url)
    page.get_by_label("Client ID").fill(oauth_token_server.client_id)
    page.get_by_label("Client secret").fill(secret)
    page.get_by_label("Scopes").fill("read write")
    page.get_by_label("Token URL").fill(oauth_token_server.token_url)
    page.get_by_label("Refresh URL").fill(oauth_token_server.refresh_url)
    page.get_by_role("button", name="Save connection").click()

    expect(page.get_by_role("heading", name="Loopback OAuth")).to_be_visible()
    expect(page.get_by_text("Connection “Loopback OAuth” created.")).to_be_visible()
    assert secret not in page.content()
    connection = Connection.objects.get(name="Loopback OAuth")
    assert page.url.endswith(connection.get_absolute_url())
    assert (connection.auth_type, connection.client_secret) == ("oauth2", secret)
    assert oauth_token_server.token_requests == 0

    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("Succeeded")
    expect(result).to_contain_text("Token received")
    expect(result).to_contain_text("expires_in 3600")

    assert oauth_token_server.grants == [("/oauth/token", "client_credentials", "basic")]
    assert oauth_token_server.scopes == ["read write"]
    html = page.content()
    assert secret not in html
    for token in oauth_token_server.access_tokens:
        assert token not in html
    page.reload()
    expect(page.locator("#test-result")).to_contain_text("Token received")
    assert secret not in page.content()


def test_designers_see_connections_but_no_new_connection_button(page, live_server, designer):
    sign_in(page, designer.username, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Connections").click()

    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    expect(page.get_by_text("Ask a Connection administrator to add one.")).to_be_visible()
    expect(page.get_by_role("link", name="New connection")).to_have_count(0)
