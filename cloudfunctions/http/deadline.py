"""An overall deadline per outbound call, enforced by shutting the call's sockets down.

Read timeouts apply per socket read, so a server dripping bytes could hold a call forever.
Shutting a socket down wakes every blocked read on it: TLS handshake, headers or body.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import socket
import threading
import time

current: contextvars.ContextVar[Watchdog | None] = contextvars.ContextVar(
    "outbound_watchdog", default=None
)


class Watchdog:
    """Shut down the sockets registered with it when its deadline passes."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        # Own duplicates of the connections' descriptors: shutdown() acts on the shared
        # socket, and closing our duplicate can never close a descriptor reused elsewhere.
        self._sockets: dict[int, socket.socket] = {}
        self.finished = False

    def watch(self, handle: socket.socket) -> None:
        with self._lock:
            if id(handle) in self._sockets:
                return
            duplicate = handle.dup()
            self._sockets[id(handle)] = duplicate
            if self.expired:
                _shutdown(duplicate)

    def expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.expired = True
            for duplicate in self._sockets.values():
                _shutdown(duplicate)

    def __enter__(self) -> Watchdog:
        self._token = current.set(self)
        self._ends = time.monotonic() + self.seconds
        _deadlines.schedule(self._ends, self)
        return self

    def remaining(self) -> float:
        return self._ends - time.monotonic()

    def __exit__(self, *exc_info) -> None:
        current.reset(self._token)
        with self._lock:
            self.finished = True
            for duplicate in self._sockets.values():
                duplicate.close()
            self._sockets.clear()


class _DeadlineScheduler:
    """One long-lived thread that expires every call's watchdog on time.

    A threading.Timer per call would start a thread per call, which costs more than the
    rest of the transport's overhead together; here a call costs a heap push.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Watchdog]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, deadline: float, watchdog: Watchdog) -> None:
        with self._condition:
            # Started lazily, and again in a forked worker, where threads do not survive.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="outbound-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._order), watchdog))
            if self._heap[0][2] is watchdog:
                self._condition.notify()

    def _loop(self) -> None:
        with self._condition:
            while True:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait()
                    continue
                deadline, _, watchdog = self._heap[0]
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                watchdog.expire()


_deadlines = _DeadlineScheduler()


def _shutdown(sock: socket.socket) -> None:
    # It may already be closed, by the peer or by us.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
