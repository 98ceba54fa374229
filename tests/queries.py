"""Count database queries, including those of test-client requests.

CaptureQueriesContext reads connection.queries, which Django clears at the start of
every request (reset_queries on request_started), so a page request counts as 0.
An execute wrapper sees every query.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connection


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


@contextmanager
def count_queries():
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        yield counter
