"""Read-only pages only read: an administrator's step editor asks for no live field check."""

from __future__ import annotations

from playwright.sync_api import expect

from orchestration.processes import services as process_services
from tests.browser.conftest import sign_in
from tests.factories import PASSWORD, ApiKeyConnectionFactory, CloudFunctionFactory


def test_an_administrators_read_only_step_editor_posts_nothing(page, live_server, admin_user):
    cf = CloudFunctionFactory(
        connection=ApiKeyConnectionFactory(),
        method="GET",
        uri='"/v1/notify/" + events["never.emitted"].body.id',
        body="",
    )
    step = cf.step
    process_services.step_refresh_problems(process=step.process)
    step.refresh_from_db()
    assert step.problems  # stored when it was saved: what the page must show instead
    # Query and header rows carry live checks too.
    cf.query_params = [{"key": '"a"', "value": '"b"'}]
    cf.headers = [{"key": '"x-h"', "value": '"v"'}]
    cf.save()

    sign_in(page, admin_user.username, PASSWORD)
    writes = []
    page.on("request", lambda r: writes.append(r.url) if r.method != "GET" else None)
    page.goto(f"/processes/{step.process_id}/steps/{step.pk}/", wait_until="networkidle")

    expect(page.get_by_label("URI")).to_be_disabled()
    expect(page.locator("#step-problems")).to_contain_text("never.emitted")
    assert writes == []
