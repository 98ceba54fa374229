"""The per-user Test-run limit, counted in Django's cache.

Every web process must share one cache (CACHE_URL) for the limit to hold across processes;
with the default local-memory cache each process counts on its own. (Sign-in lockout is
django-axes's: see orchestration/web/signin.py.)
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

TEST_RUNS_THROTTLED = "Too many Test runs; try again in {seconds} second{s}."
FIELD_CHECKS_THROTTLED = "Too many live checks; try again in {seconds} second{s}."


class Throttled(Exception):
    """The action is refused until a window passes; ``message`` is safe to show."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limiter:
    """At most ``limit`` hits per key in a fixed window that starts at the key's first hit."""

    name: str
    limit_setting: str
    window_setting: str

    @property
    def limit(self) -> int:
        return getattr(settings, self.limit_setting)

    @property
    def window(self) -> int:
        return getattr(settings, self.window_setting)

    def _keys(self, key: str) -> tuple[str, str]:
        # Hashed: a key may hold bytes some cache backends refuse.
        digest = hashlib.sha256(f"{self.name}\0{key}".encode()).hexdigest()
        return f"throttle:{digest}:count", f"throttle:{digest}:start"

    def retry_after(self, key: str) -> int:
        """Return the seconds until ``key`` may act again, or 0 when it may act now."""
        count_key, start_key = self._keys(key)
        if (cache.get(count_key) or 0) < self.limit:
            return 0
        started = cache.get(start_key)
        if started is None:
            return 0
        return max(1, math.ceil(started + self.window - time.time()))

    def hit(self, key: str) -> int:
        """Count one hit for ``key`` and return the count in the current window."""
        count_key, start_key = self._keys(key)
        # add() is a no-op when the window is already open, so only the first hit starts it.
        cache.add(start_key, time.time(), timeout=self.window)
        cache.add(count_key, 0, timeout=self.window)
        try:
            return cache.incr(count_key)
        except ValueError:  # expired between add() and incr()
            cache.set(count_key, 1, timeout=self.window)
            return 1


test_run_limiter = Limiter("test-run", "TEST_RUN_LIMIT", "TEST_RUN_WINDOW_SECONDS")
# Every live check may cost a CEL evaluation of up to its time limit (issue 13, D1).
field_check_limiter = Limiter("field-check", "FIELD_CHECK_LIMIT", "FIELD_CHECK_WINDOW_SECONDS")


def check_test_run_allowed(user) -> None:
    """Count one Test run for ``user``; raise Throttled when over the limit."""
    _count(test_run_limiter, TEST_RUNS_THROTTLED, user)


def check_field_check_allowed(user) -> None:
    """Count one live check of a field for ``user``; raise Throttled when over the limit."""
    _count(field_check_limiter, FIELD_CHECKS_THROTTLED, user)


def _count(limiter: Limiter, message: str, user) -> None:
    key = str(user.pk)
    wait = limiter.retry_after(key)
    if not wait:
        limiter.hit(key)
        return
    raise Throttled(message.format(seconds=wait, s="" if wait == 1 else "s"), wait)
