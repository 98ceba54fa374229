"""Tiny benchmark harness: medians, query counts and ratios against a baseline run alongside."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.queries import count_queries


@dataclass
class Measurement:
    median_s: float
    queries: int


def measure(fn: Callable[[], object], *, repeat: int = 25, warmup: int = 3) -> Measurement:
    """Run fn repeatedly and return its median wall time and the queries of one run."""
    for _ in range(warmup):
        fn()
    with count_queries() as counter:
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Measurement(statistics.median(samples), counter.count)


def measure_interleaved(
    *fns: Callable[[], object], repeat: int = 25, warmup: int = 3
) -> list[Measurement]:
    """Like `measure` for several functions, alternating them call by call.

    Two medians taken one after the other drift apart with whatever else the machine does
    meanwhile (the other core, frequency scaling, a server thread in the same process);
    alternating exposes each function to the same conditions, so their ratio stays stable.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    queries = []
    for fn in fns:
        with count_queries() as counter:
            fn()
        queries.append(counter.count)
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, times in zip(fns, samples, strict=True):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return [
        Measurement(statistics.median(times), count)
        for times, count in zip(samples, queries, strict=True)
    ]


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
