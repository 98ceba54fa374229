"""Cache-based limits: failed sign-ins per username and address, Test runs per user.

Counts live in Django's cache, so every web process must share one cache (CACHE_URL) for
the limits to hold across processes; with the default local-memory cache each process
counts on its own.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.core.cache import cache

LOGIN_THROTTLED = "Too many failed sign-ins; try again in {minutes} minute{s}."
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
        # Hashed: usernames and addresses are personal data and may hold cache-unsafe bytes.
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

    def reset(self, key: str) -> None:
        cache.delete_many(self._keys(key))


login_limiter = Limiter("login", "LOGIN_FAILURE_LIMIT", "LOGIN_FAILURE_WINDOW_SECONDS")
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


def client_address(request) -> str:
    """The address the request came from, as the outermost of our own proxies saw it.

    X-Forwarded-For is read only with TRUSTED_PROXY_COUNT set, and only the entries our
    proxies appended: a client can write any address it likes to the left of them.
    """
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        forwarded = [address.strip() for address in forwarded if address.strip()]
        if len(forwarded) >= hops:
            try:
                # Normalised, so "::1" and "0:0::1" count as one client, and junk as none.
                return str(ipaddress.ip_address(_without_port(forwarded[-hops])))
            except ValueError:
                pass  # not an address: count the proxy's
    return request.META.get("REMOTE_ADDR", "")


def _without_port(entry: str) -> str:
    # Some proxies append the client's port: "203.0.113.7:51234", "[2001:db8::1]:51234".
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


def _login_key(request, username: str) -> str:
    return f"{username.strip().casefold()}\0{client_address(request)}"


class ThrottledLoginView(LoginView):
    """Django's sign-in that stops checking passwords after repeated failures."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        key = _login_key(request, username)
        wait = login_limiter.retry_after(key) if username else 0
        if wait:
            minutes = math.ceil(wait / 60)
            message = LOGIN_THROTTLED.format(minutes=minutes, s="" if minutes == 1 else "s")
            # An unbound form: binding it would authenticate, which is what is refused.
            form = self.form_class(request, initial={"username": username})
            context = self.get_context_data(form=form, throttled=message)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(wait)
            return response
        response = super().post(request, *args, **kwargs)
        if username and response.status_code != 302:
            login_limiter.hit(key)
        elif username:
            login_limiter.reset(key)
        return response
