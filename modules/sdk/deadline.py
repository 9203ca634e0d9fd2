"""Invocation deadlines: work the host has already given up on is dropped, never committed.

The host sends each invocation's absolute deadline as ``X-Corral-Deadline-Ms: <unix epoch ms>``
(the sooner of its request timeout and the envelope's ``deadline_ms``). The SDK keeps it for the
handler thread; it refuses to start an invocation whose deadline has passed, drops an answer produced
too late, and a module with side effects calls ``check_deadline()`` right before it commits them
(Arca does, inside its transaction), so a stalled module that resumes after the host answered a
timeout commits nothing.

Standard library only.
"""
from __future__ import annotations

import threading
import time
from typing import Optional

DEADLINE_HEADER = "X-Corral-Deadline-Ms"

_current = threading.local()


class DeadlineExceeded(Exception):
    """The current invocation's deadline has passed; the SDK answers 504 ``deadline_exceeded``."""


def parse_deadline(value: Optional[str]) -> Optional[int]:
    """The header's epoch milliseconds, None when absent; ``ValueError`` when it is not a positive integer."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{DEADLINE_HEADER} must be a positive integer (unix epoch milliseconds), got {value!r}")
    return int(text)


def set_current(deadline_ms: Optional[int]) -> None:
    """Sets the deadline of the invocation running on this thread (None: no deadline)."""
    _current.deadline_ms = deadline_ms


def current() -> Optional[int]:
    """The deadline (epoch ms) of the invocation running on this thread, None when it has none."""
    return getattr(_current, "deadline_ms", None)


def remaining_ms(now_ms: Optional[float] = None) -> Optional[float]:
    """Milliseconds left before the current deadline (negative once passed), None without one."""
    deadline_ms = current()
    if deadline_ms is None:
        return None
    return deadline_ms - (time.time() * 1000.0 if now_ms is None else now_ms)


def check_deadline(what: str = "the invocation") -> None:
    """Raises ``DeadlineExceeded`` when the current invocation's deadline has passed; call it before committing."""
    left = remaining_ms()
    if left is not None and left <= 0:
        raise DeadlineExceeded(f"{what} passed its deadline {-left:.0f} ms ago; the host no longer waits for it")
