"""Page benchmarks: list and editor pages must not issue a query per row."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client

from orchestration.models import Process, Step
from tests.benchmarks.harness import measure, report


def _client() -> Client:
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True})
    client = Client()
    client.force_login(user)
    return client


def _get(client: Client, url: str):
    def fetch():
        response = client.get(url)
        assert response.status_code == 200, response.status_code

    return fetch


def run() -> None:
    client = _client()
    Process.objects.all().delete()
    empty = measure(_get(client, "/processes/"))
    Process.objects.create(name="Process 000")
    one = measure(_get(client, "/processes/"))
    Process.objects.bulk_create(Process(name=f"Process {i:03}") for i in range(1, 200))
    full = measure(_get(client, "/processes/?page=1"))
    # An empty list skips the query for rows; from one row on the count must stay put.
    note = f"{_verdict(full, one)}; {empty.queries} queries with 0 rows, {one.queries} with 1"
    report("processes page, 200 vs 0 processes", full, empty, note)

    small = Process.objects.create(name="One step")
    Step.objects.create(process=small, name="Only", key="only", position=1)
    baseline = measure(_get(client, f"/processes/{small.pk}/"))
    big = Process.objects.create(name="Many steps")
    Step.objects.bulk_create(
        Step(process=big, name=f"Step {i}", key=f"step-{i}", position=i) for i in range(200)
    )
    editor = measure(_get(client, f"/processes/{big.pk}/"))
    report("process editor, 200 vs 1 steps", editor, baseline, _verdict(editor, baseline))


def _verdict(subject, baseline) -> str:
    same = subject.queries == baseline.queries
    return "(queries constant)" if same else "(QUERIES GROW WITH ROWS)"
