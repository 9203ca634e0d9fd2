"""Keep-alive bounds of the bounded server: how many idle connections it keeps, and for how long.

A connection is *idle* while it waits for its next request (a fresh connection is idle until its first
byte arrives). Idle connections hold no permit, but each holds a socket and a thread, so they are
bounded twice: at most ``max_idle_connections`` (default ``CORRAL_MODULE_MAX_IDLE_CONNECTIONS`` or
32; over it, the oldest idle one is closed) and at most ``idle_timeout`` seconds each (default
``CORRAL_MODULE_IDLE_TIMEOUT_SEC`` or 5). Responses tell the client the timeout
(``Keep-Alive: timeout=N``) so it stops reusing a connection before the server closes it.

``IdleConnections`` keeps the idle set in the order connections became idle; the server calls it
with its own lock held.

Standard library only.
"""
from __future__ import annotations

import math
import os
import select
import socket
from collections import OrderedDict
from typing import Callable, Generic, Hashable, List, Mapping, Optional, TypeVar

from env_settings import positive_int

MAX_IDLE_ENV = "CORRAL_MODULE_MAX_IDLE_CONNECTIONS"
IDLE_TIMEOUT_ENV = "CORRAL_MODULE_IDLE_TIMEOUT_SEC"
DEFAULT_MAX_IDLE_CONNECTIONS = 32
DEFAULT_IDLE_TIMEOUT_SEC = 5.0


def _env(environ: Optional[Mapping[str, str]]) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def max_idle_from_env(environ: Optional[Mapping[str, str]] = None) -> int:
    """Idle connections kept at most, from ``CORRAL_MODULE_MAX_IDLE_CONNECTIONS`` (default 32); a bad value is an error."""
    return positive_int(MAX_IDLE_ENV, DEFAULT_MAX_IDLE_CONNECTIONS, environ)


def idle_timeout_from_env(environ: Optional[Mapping[str, str]] = None) -> float:
    """Seconds an idle connection is kept, from ``CORRAL_MODULE_IDLE_TIMEOUT_SEC`` (default 5); a bad value is an error."""
    raw = _env(environ).get(IDLE_TIMEOUT_ENV, "").strip()
    if raw == "":
        return DEFAULT_IDLE_TIMEOUT_SEC
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{IDLE_TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{IDLE_TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return value


def keep_alive_header(idle_timeout: float) -> str:
    """The ``Keep-Alive`` header value announcing ``idle_timeout`` (whole seconds, rounded down, at least 1)."""
    return f"timeout={max(1, int(idle_timeout))}"


def has_pending_bytes(sock: socket.socket) -> bool:
    """Whether request bytes already wait on ``sock`` (never blocks; EOF and errors count as none)."""
    try:
        # A socket with a timeout polls for up to that timeout before any recv, MSG_DONTWAIT or not:
        # ask poll() first, with no wait, and peek only at a socket that is readable.
        readable = select.poll()
        readable.register(sock, select.POLLIN)
        if not readable.poll(0):
            return False
        return len(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)) > 0
    except (OSError, ValueError):
        return False


C = TypeVar("C", bound=Hashable)


class IdleConnections(Generic[C]):
    """Connections waiting for a request, oldest first, at most ``limit`` kept (the caller holds the lock)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_idle_connections must be >= 1, got {limit}")
        self.limit = limit
        self._since: "OrderedDict[C, float]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, conn: object) -> bool:
        return conn in self._since

    def add(self, conn: C, now: float, pending: Callable[[C], bool]) -> List[C]:
        """Marks ``conn`` idle; returns the oldest idle connections to close to keep within the limit.

        A connection whose next request has already arrived (``pending``) is not idle any more even if
        its thread has not noticed yet: it is skipped, so the bound never drops a request it has.
        """
        self._since[conn] = now
        evicted: List[C] = []
        if len(self._since) <= self.limit:
            return evicted
        for candidate in list(self._since):
            if len(self._since) <= self.limit:
                break
            if candidate is conn or pending(candidate):
                continue
            del self._since[candidate]
            evicted.append(candidate)
        return evicted

    def take(self, conn: C) -> bool:
        """Takes ``conn`` out of the idle set (its request arrived); False if it was closed meanwhile."""
        return self._since.pop(conn, None) is not None

    def take_all_waiting(self, pending: Callable[[C], bool]) -> List[C]:
        """Takes out every idle connection without a request waiting (to close them on drain)."""
        victims = [conn for conn in self._since if not pending(conn)]
        for conn in victims:
            del self._since[conn]
        return victims

