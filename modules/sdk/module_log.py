"""Module logging: one JSON object per line on stderr, tagged with the module's id.

The host captures a module's stderr into its log file; one object per line keeps it parseable.
Tests send the lines elsewhere by setting ``module_log.LOG_STREAM``.

Standard library only.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from module_env import MODULE_ID_ENV

_log_lock = threading.Lock()
#: Where log lines go; None means the current ``sys.stderr`` (tests swap in a buffer).
LOG_STREAM: Optional[Any] = None
# The first module built in this process names the lines when CORRAL_MODULE_ID is unset.
_module_name = [""]


def name_module(name: str) -> None:
    """Records ``name`` as the module being served, unless one was recorded already."""
    if not _module_name[0]:
        _module_name[0] = name


def module_id(default: Optional[str] = None) -> str:
    """``CORRAL_MODULE_ID``, else ``default``, else the name of the module being served."""
    return os.environ.get(MODULE_ID_ENV) or (default if default is not None else _module_name[0])


def log(level: str, msg: str, **fields: Any) -> None:
    """Writes one line ``{"ts", "level", "module", "msg", ...fields}`` to stderr."""
    record: Dict[str, Any] = {
        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "module": module_id(),
        "msg": msg,
    }
    for key, value in fields.items():
        record[key] = value
    line = json.dumps(record, ensure_ascii=False, default=repr, separators=(",", ":"))
    stream = LOG_STREAM if LOG_STREAM is not None else sys.stderr
    with _log_lock:
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass
