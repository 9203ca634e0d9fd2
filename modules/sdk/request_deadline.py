"""The bounded server's request deadline: a watchdog thread that shuts down the socket of a request
running past ``request_deadline`` seconds, so a client that trickles bytes cannot hold a permit forever.

It starts with the first request, ticks on its own clock (request ends do not wake it) and stops once
the server is closing with no request left.

Standard library only.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Hashable, List, Optional, TypeVar

from request_gate import RequestGate

C = TypeVar("C", bound=Hashable)


class DeadlineWatchdog(Generic[C]):
    """Shuts late requests' connections down via ``shut`` (see module doc)."""

    def __init__(self, gate: RequestGate[C], deadline: float, shut: Callable[[List[C]], None],
                 log: Callable[..., None]) -> None:
        self._gate = gate
        self._deadline = deadline
        self._shut = shut
        self._log = log
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        """Starts the watchdog thread once."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="bounded-http-watchdog", daemon=True)
                self._thread.start()

    def _watch(self) -> None:
        tick = min(1.0, max(0.02, self._deadline / 4))
        while not (self._gate.closing and self._gate.active_count() == 0):
            time.sleep(tick)
            late = self._gate.overdue(self._deadline)
            if late:
                self._log("warn", "request passed its deadline, shutting its connection down",
                          deadline_sec=self._deadline, requests=len(late))
            self._shut(late)  # the handler's blocked read or write returns
