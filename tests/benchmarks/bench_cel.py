"""CEL benchmark: the live check of issue 13's D1 expression, in time and peak memory.

Each call checks a text not seen before (a trailing comment differs), so the compile cache
never answers for it: this is what a designer pays, and can make the server pay, per request.
"""

from __future__ import annotations

import itertools
import tracemalloc

from django.test import Client
from django.urls import reverse

from tests.benchmarks.harness import measure_interleaved, report
from tests.cloudfunctions.cel.test_limits import NESTED_MAPS, REFUSALS, doubling
from tests.factories import StepFactory, designer

REPEAT = 10


def run() -> None:
    client = Client()
    client.force_login(designer(username="bench-cel"))
    step = StepFactory()
    url = reverse("cloud-function-check", args=[step.process_id, step.pk])
    counter = itertools.count()

    def check(source: str) -> str:
        # A comment makes the text new to the cache, as every edit of a designer does.
        data = {"_field": "uri", "uri": f"{source} // {next(counter)}"}
        response = client.post(url, data, HTTP_HX_REQUEST="true")
        assert response.status_code == 200, response.status_code
        return response.content.decode()

    with _unthrottled():
        for name, source in (("nested map()", NESTED_MAPS), ("doubled string", doubling(30))):
            refusal = next((r for r in REFUSALS if r.replace("'", "&#x27;") in check(source)), "")
            assert refusal, f"the {name} attack was not refused"
            attack, plain = measure_interleaved(
                lambda source=source: check(source),
                lambda: check('"/v1/charges"'),
                repeat=REPEAT,
                warmup=1,
            )
            tracemalloc.start()
            check(source)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            report(
                f"live check of the D1 {name} expression ({len(source)} chars) vs a plain one",
                attack,
                plain,
                f"(peak {peak / 1e6:.1f} MB under tracemalloc; refused: {refusal[:48]}...)",
            )


class _unthrottled:
    """Lift the per-user live-check limit: the benchmark makes more checks than a person."""

    def __enter__(self) -> None:
        from django.conf import settings

        self.limit = settings.FIELD_CHECK_LIMIT
        settings.FIELD_CHECK_LIMIT = 10**9

    def __exit__(self, *exc: object) -> None:
        from django.conf import settings

        settings.FIELD_CHECK_LIMIT = self.limit
