"""Settings a module reads from its environment: a bad value is an error naming the variable.

Standard library only.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional


def positive_int(name: str, default: int, environ: Optional[Mapping[str, str]] = None) -> int:
    """``name`` from the environment (``os.environ`` unless given) as an integer ≥ 1; ``default`` when unset or blank."""
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value
