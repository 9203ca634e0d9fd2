"""Where a module listens: a loopback TCP port or a Unix socket, from its arguments or its environment.

``--socket PATH`` and ``--port N`` (launch placeholders ``{socket}`` / ``{port}``) win over
``CORRAL_MODULE_SOCKET`` and ``CORRAL_MODULE_PORT``, which the host sets for ``http.transport``
``"unix"`` and ``port: "auto"``. Giving both a socket and a port on the command line is an error.

Standard library only.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Mapping, NamedTuple, Optional, Sequence

PORT_ENV = "CORRAL_MODULE_PORT"
SOCKET_ENV = "CORRAL_MODULE_SOCKET"


class ListenAddress(NamedTuple):
    """A TCP port on 127.0.0.1 (``socket_path`` None) or a Unix socket path (``port`` None)."""

    port: Optional[int]
    socket_path: Optional[str]


def _known_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--port")
    parser.add_argument("--socket")
    known, _ = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    return known


def _port(raw: str, source: str) -> int:
    try:
        port = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{source} must be an integer, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{source} must be between 0 and 65535, got {port}")
    return port


def resolve_port(argv: Optional[Sequence[str]] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    """``--port N`` wins over ``CORRAL_MODULE_PORT``; 0 means an ephemeral port (logged once bound)."""
    env = os.environ if environ is None else environ
    known = _known_args(argv)
    raw = known.port if known.port is not None else env.get(PORT_ENV)
    source = "--port" if known.port is not None else PORT_ENV
    if raw is None or str(raw).strip() == "":
        raise ValueError(f"no port: pass --port N or set {PORT_ENV}")
    return _port(raw, source)


def resolve_listen(argv: Optional[Sequence[str]] = None, environ: Optional[Mapping[str, str]] = None) -> ListenAddress:
    """The module's listen address (see the module doc); ``ValueError`` naming the argument when unusable."""
    env = os.environ if environ is None else environ
    known = _known_args(argv)
    if known.socket is not None and known.port is not None:
        raise ValueError("pass --socket PATH or --port N, not both")
    if known.socket is not None:
        return ListenAddress(None, known.socket)
    if known.port is not None:
        return ListenAddress(_port(known.port, "--port"), None)
    socket_path = env.get(SOCKET_ENV, "").strip()
    if socket_path:
        return ListenAddress(None, socket_path)
    return ListenAddress(resolve_port([], env), None)
