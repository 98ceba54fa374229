"""Fixtures shared by the cloud-function tests."""

from __future__ import annotations

import pytest
from django.db.backends.signals import connection_created


@pytest.fixture
def sqlite_readers_do_not_fail_writers():
    """On the shared-cache in-memory SQLite of the tests, a reader's table lock makes a
    concurrent writer fail at once ("database table is locked"), where a database file makes
    it wait its busy timeout. Reading uncommitted rows takes no table lock; the rows read by
    the tests that use this are written by single autocommitted statements, so nothing
    uncommitted is ever seen. For tests whose threads write while others read."""

    def read_uncommitted(sender, connection, **kwargs):
        if connection.vendor == "sqlite":
            connection.cursor().execute("PRAGMA read_uncommitted = 1")

    connection_created.connect(read_uncommitted)
    yield
    connection_created.disconnect(read_uncommitted)
