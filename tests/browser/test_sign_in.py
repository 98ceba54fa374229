from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.factories import PASSWORD


def test_designer_signs_in_and_sees_empty_processes(page, designer):
    sign_in(page, designer.username, PASSWORD)
    expect(page.get_by_role("heading", name="Processes")).to_be_visible()
    expect(page.get_by_text("No processes yet")).to_be_visible()


def test_wrong_password_shows_an_error(page, designer):
    sign_in(page, designer.username, "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("enter a correct username and password")
    expect(page.get_by_label("Username")).to_have_value(designer.username)
