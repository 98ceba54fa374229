"""Tiny benchmark harness: medians, query counts and ratios against a baseline run alongside."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.test.utils import CaptureQueriesContext


@dataclass
class Measurement:
    median_s: float
    queries: int


def measure(fn: Callable[[], object], *, repeat: int = 25, warmup: int = 3) -> Measurement:
    """Run fn repeatedly and return its median wall time and the queries of one run."""
    for _ in range(warmup):
        fn()
    with CaptureQueriesContext(connection) as ctx:
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Measurement(statistics.median(samples), len(ctx.captured_queries))


def report(name: str, subject: Measurement, baseline: Measurement, note: str = "") -> str:
    """Print one line: what was measured, its median, and the ratio to its baseline."""
    ratio = subject.median_s / baseline.median_s if baseline.median_s else float("inf")
    line = (
        f"{name}: median {subject.median_s * 1000:.2f} ms ({subject.queries} queries), "
        f"baseline {baseline.median_s * 1000:.2f} ms ({baseline.queries} queries), "
        f"ratio {ratio:.2f}x"
    )
    if note:
        line += f" {note}"
    print(line, flush=True)
    return line
