"""Read-only editors say why they are read-only, in text beside the disabled fields."""

from __future__ import annotations

from orchestration.models import Process
from orchestration.processes.views import FROZEN_REFUSED
from orchestration.web.roles import DESIGN_REFUSED
from tests.factories import CloudFunctionFactory
from tests.orchestration.run_builders import deployed_process


def test_an_administrator_reads_why_the_editor_is_read_only(admin_client_):
    step = CloudFunctionFactory().step
    for url in (f"/processes/{step.process_id}/", f"/processes/{step.process_id}/steps/{step.pk}/"):
        html = admin_client_.get(url).content.decode()
        assert DESIGN_REFUSED in html


def test_a_designer_reads_why_a_deployed_version_is_read_only(designer_client):
    cf = CloudFunctionFactory()
    process = deployed_process(cf.connection, '"/v1/x"')
    live = Process.objects.get(pk=process.live_version_id)
    html = designer_client.get(f"/processes/{live.pk}/").content.decode()
    assert FROZEN_REFUSED.format(number=live.version_number, name=live.name) in html


def test_a_designer_editing_a_draft_reads_no_such_notice(designer_client):
    step = CloudFunctionFactory().step
    html = designer_client.get(f"/processes/{step.process_id}/").content.decode()
    assert 'id="read-only-reason"' not in html
