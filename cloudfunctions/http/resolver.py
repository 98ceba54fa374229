"""A few threads that resolve names for calls that stop waiting at their deadline."""

from __future__ import annotations

import concurrent.futures
import ipaddress
import os
import threading

from cloudfunctions.http.deadline import Watchdog

RESOLVER_THREADS = 16


class Resolvers:
    """Run lookups beside the calls that wait for them.

    A lookup that hangs holds its thread until the system resolver gives up (seconds to
    minutes). So that one such name cannot take every thread, a name has at most one lookup
    in progress, whatever the port: later calls for it wait on that one, within their own
    deadlines, and only start their own once it has ended.
    """

    def __init__(self):
        self._start()
        # Threads, and a lookup in progress, do not survive fork() (an RQ job process): the
        # child starts afresh, with a lock nobody can be holding.
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._busy: dict[str, concurrent.futures.Future] = {}

    def run(self, name: str, function, args: tuple, watchdog: Watchdog):
        """Return ``function(*args)``, a lookup of ``name``; raise TimeoutError at the deadline."""
        while True:
            with self._lock:
                busy = self._busy.get(name)
                if busy is None or busy.done():
                    future = self._busy[name] = self._executor().submit(function, *args)
                    break
            concurrent.futures.wait([busy], timeout=max(watchdog.remaining(), 0))
            if not busy.done():
                raise concurrent.futures.TimeoutError
        future.add_done_callback(lambda done: self._forget(name, done))
        try:
            return future.result(timeout=max(watchdog.remaining(), 0))
        except concurrent.futures.TimeoutError:
            future.cancel()  # still queued behind other names: never started
            raise

    def _forget(self, name: str, future: concurrent.futures.Future) -> None:
        with self._lock:
            if self._busy.get(name) is future:
                del self._busy[name]

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=RESOLVER_THREADS, thread_name_prefix="outbound-dns"
            )
        return self._pool


resolvers = Resolvers()


def is_ip_address(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True
