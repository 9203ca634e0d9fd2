"""The bounded server's bookkeeping: which connections are idle, which requests hold a permit, and drain.

A connection moves idle → active (its request got one of ``max_requests`` permits) → idle again (kept
alive) or closed. Every change happens under one lock in here; the server only does the socket work
that a call returns (shut an evicted idle connection down, refuse a request, close a connection).
Nothing in here blocks except ``wait_drained``.

Standard library only.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Generic, Hashable, List, Optional, Set, Tuple, TypeVar

from keep_alive import IdleConnections

C = TypeVar("C", bound=Hashable)

#: ``request_arrived`` outcomes.
GRANTED, REFUSED, GONE = "granted", "refused", "gone"

# Marks an active request whose socket the deadline shut down (its connection is not kept).
_OVERDUE = float("inf")


class RequestGate(Generic[C]):
    """Permits per active request, bounded idle connections, counters and drain (see module doc)."""

    def __init__(self, max_requests: int, max_idle: int, pending: Callable[[C], bool]) -> None:
        self.max_requests = max_requests
        self._pending = pending
        self._lock = threading.Condition()
        self._active: Dict[C, float] = {}  # connection -> its request's monotonic start
        # Released requests whose answer is still being written: drain waits for them too, or a process
        # exiting after drain would drop an answer its handler already produced.
        self._sending: Set[C] = set()
        self._idle: IdleConnections[C] = IdleConnections(max_idle)
        self._closing = False
        self.counts: Dict[str, int] = {
            "accepted": 0, "rejected_over_capacity": 0, "connections_accepted": 0, "deadline_closed": 0,
            "idle_closed_timeout": 0, "idle_closed_over_bound": 0,
        }

    @property
    def max_idle(self) -> int:
        return self._idle.limit

    @property
    def closing(self) -> bool:
        return self._closing

    def full(self) -> bool:
        """Whether every permit is held right now (a hint read without the lock)."""
        return len(self._active) >= self.max_requests

    def refused(self) -> None:
        """Counts a request refused before it reached a connection thread."""
        with self._lock:
            self.counts["rejected_over_capacity"] += 1

    def connection_opened(self, conn: C) -> List[C]:
        """A new connection is idle until its first byte; returns the idle connections to close (over the bound, or closing)."""
        with self._lock:
            self.counts["connections_accepted"] += 1
            if self._closing:
                return [conn]  # lost the race with stop(): close it like the other idle ones
            return self._evicted(self._idle.add(conn, time.monotonic(), self._pending))

    def request_arrived(self, conn: C) -> str:
        """The connection's next request arrived: ``GRANTED`` (a permit is now held), ``REFUSED`` or ``GONE`` (closed meanwhile)."""
        with self._lock:
            if not self._idle.take(conn):
                return GONE
            if len(self._active) >= self.max_requests:
                self.counts["rejected_over_capacity"] += 1
                return REFUSED
            self.counts["accepted"] += 1
            self._active[conn] = time.monotonic()
            return GRANTED

    def release(self, conn: C) -> bool:
        """Releases the request's permit (its handler is done); True if the deadline had shut its socket down."""
        with self._lock:
            started = self._active.pop(conn, None)
            overdue = started == _OVERDUE
            if started is not None:
                self._sending.add(conn)
            self._lock.notify_all()
            return overdue

    def response_sent(self, conn: C, keep: bool) -> Tuple[bool, List[C]]:
        """After ``release``: returns whether the connection stays open (idle) and the idle ones to close."""
        with self._lock:
            self._sending.discard(conn)
            kept = keep and not self._closing
            evicted = self._evicted(self._idle.add(conn, time.monotonic(), self._pending)) if kept else []
            self._lock.notify_all()
            return kept, evicted

    def idle_timed_out(self, conn: C) -> None:
        with self._lock:
            if self._idle.take(conn):
                self.counts["idle_closed_timeout"] += 1

    def connection_closed(self, conn: C) -> None:
        with self._lock:
            self._idle.take(conn)
            self._sending.discard(conn)
            self._lock.notify_all()

    def overdue(self, deadline: float) -> List[C]:
        """Active requests older than ``deadline`` seconds, each returned once."""
        now = time.monotonic()
        with self._lock:
            late = [conn for conn, started in self._active.items() if now - started > deadline]
            for conn in late:
                self._active[conn] = _OVERDUE
            self.counts["deadline_closed"] += len(late)
            return late

    def stop(self) -> List[C]:
        """Accepts nothing more; returns the idle connections to close (those without a request waiting)."""
        with self._lock:
            self._closing = True
            victims = self._idle.take_all_waiting(self._pending)
            self._lock.notify_all()
            return victims

    def wait_drained(self, timeout: float) -> bool:
        """Waits up to ``timeout`` s until no request is active, answering or about to be; True if none is left."""
        end = time.monotonic() + max(0.0, timeout)
        with self._lock:
            while self._active or self._sending or len(self._idle):
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return not self._active and not self._sending

    def snapshot(self) -> Dict[str, Optional[int]]:
        with self._lock:
            return {**self.counts, "active": len(self._active), "idle": len(self._idle)}

    def active_count(self) -> int:
        with self._lock:
            return len(self._active)

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def _evicted(self, conns: List[C]) -> List[C]:
        self.counts["idle_closed_over_bound"] += len(conns)
        return conns
