from __future__ import annotations

import pytest

from orchestration.processes import deployments
from tests.factories import ApiKeyConnectionFactory
from tests.orchestration.run_builders import deployed_process


@pytest.fixture
def fast_retries(settings):
    settings.RUN_RETRY_BASE_DELAY_SECONDS = 0.01
    settings.RUN_RETRY_MAX_DELAY_SECONDS = 2
    return settings


@pytest.fixture
def api(outbound_tls, tls_httpserver, fast_retries):
    """A connection to a loopback TLS API, and that API's server."""
    return ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/").rstrip("/")), tls_httpserver


@pytest.fixture
def hooked(api):
    """A deployed one-step process, its webhook token, and the API it calls."""
    connection, server = api
    server.expect_request("/v1/x").respond_with_json({"ok": 1})
    process = deployed_process(connection, '"/v1/x"')
    return process, deployments.webhook_token_rotate(process=process), server
