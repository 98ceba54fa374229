"""Amazon Connect as botocore describes it: its regions, their endpoints and its service model.

Loaded once per process from boto3's own data, so the models, the connection form, the
signer and the operation picker all read the same lists.
"""

from __future__ import annotations

import functools

import botocore.loaders
import botocore.regions
import botocore.session
from django.conf import settings

SERVICE = "connect"


class UnknownRegion(ValueError):
    """botocore lists no Amazon Connect endpoint in this region."""


def regions() -> list[str]:
    """Return the regions where botocore knows an Amazon Connect endpoint, sorted."""
    return sorted(_endpoint_hosts())


def is_region(region: str) -> bool:
    return region in _endpoint_hosts()


def base_url(region: str) -> str:
    """Return the base URL of Amazon Connect in a region (or the test override)."""
    host = _endpoint_hosts().get(region)
    if host is None:
        raise UnknownRegion(region)
    return settings.AMAZON_CONNECT_ENDPOINT_OVERRIDE or f"https://{host}"


@functools.cache
def _endpoint_hosts() -> dict[str, str]:
    resolver = botocore.regions.EndpointResolver(
        botocore.loaders.create_loader().load_data("endpoints")
    )
    hosts = {}
    for partition in resolver.get_available_partitions():
        for region in resolver.get_available_endpoints(SERVICE, partition):
            hosts[region] = resolver.construct_endpoint(SERVICE, region)["hostname"]
    return hosts


@functools.cache
def service_model():
    return botocore.session.get_session().get_service_model(SERVICE)
