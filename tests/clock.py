"""How long a test waits for work that a limit must stop: generously, so load never fails it.

A test that proves a limit (an outbound deadline, the CEL time limit) gives the work far more
to do than this bound without the limit (a server that stalls for a minute, an expression
that runs for minutes), so stopping within it still proves the limit however busy the
machine. Speed is measured in tests/benchmarks, not asserted here.
"""

from __future__ import annotations

GENEROUS_SECONDS = 10.0
