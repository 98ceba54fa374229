from __future__ import annotations

import pytest

from tests import factories
from tests.tls import *  # noqa: F403  (TLS servers, CA and OAuth endpoint fixtures)

NEEDS_POSTGRES = (
    "needs PostgreSQL, and the tests run on {vendor}: set DATABASE_URL=postgres://… "
    "(.ci/run runs the suite again on PostgreSQL); select these with -m postgres"
)


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked postgres, saying why, when the test database is another one."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason=NEEDS_POSTGRES.format(vendor=connection.display_name))
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def designer(db):
    return factories.designer(username="dana")


@pytest.fixture
def admin_user(db):
    return factories.connection_admin(username="alex")


@pytest.fixture
def superuser(db):
    return factories.UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def designer_client(client, designer):
    client.force_login(designer)
    return client


@pytest.fixture
def admin_client_(client, admin_user):
    """A client signed in as a Connection administrator (pytest-django owns `admin_client`)."""
    client.force_login(admin_user)
    return client


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hash test users' passwords cheaply: the suite creates hundreds of them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Sign-in and Test-run limits count in the cache; no test inherits another's counts.

    Workers cache deployed versions by primary key, which a rolled-back test frees for reuse.
    """
    from django.core.cache import cache

    from orchestration.runs import plans

    cache.clear()
    plans.forget_all()
    yield
    cache.clear()
    plans.forget_all()


@pytest.fixture
def encryption_keys(settings):
    """``encryption_keys(value)`` sets FIELD_ENCRYPTION_KEY and re-reads it; restored afterwards."""
    from cloudfunctions import secrets

    original = settings.FIELD_ENCRYPTION_KEY

    def use(value):
        settings.FIELD_ENCRYPTION_KEY = value
        secrets.reload_keys()

    yield use
    settings.FIELD_ENCRYPTION_KEY = original
    secrets.reload_keys()
