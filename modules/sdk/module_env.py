"""What the host tells a module in its environment, besides where to listen and its token.

``CORRAL_MODULE_ID`` is the component id the host runs it as (it tags the log lines);
``CORRAL_DATA_DIR`` is the host's data directory, where a module keeps its files.

Standard library only.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from module_errors import ModuleConfigError

MODULE_ID_ENV = "CORRAL_MODULE_ID"
DATA_DIR_ENV = "CORRAL_DATA_DIR"


def data_dir(environ: Optional[Mapping[str, str]] = None) -> str:
    """``CORRAL_DATA_DIR``, else the default ``~/.local/state/corral``."""
    env = os.environ if environ is None else environ
    value = env.get(DATA_DIR_ENV, "").strip()
    if value:
        return value
    home = env.get("HOME", "").strip()
    if not home:
        raise ModuleConfigError(f"{DATA_DIR_ENV} is not set and there is no HOME to default to")
    return os.path.join(home, ".local", "state", "corral")
