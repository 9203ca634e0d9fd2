"""What "over capacity" means for the bounded server: its permit count, and the exact 503 it writes.

``max_connections_from_env`` reads the permit count (``CORRAL_MODULE_MAX_CONNECTIONS``, default 32: the
number of requests served at once). ``refuse(sock)`` writes ``OVERLOAD_RESPONSE`` without blocking
and closes the socket so that the client reads the answer (a FIN, not a RST).

Standard library only.
"""
from __future__ import annotations

import socket
from typing import Mapping, Optional

from env_settings import positive_int

MAX_CONNECTIONS_ENV = "CORRAL_MODULE_MAX_CONNECTIONS"
DEFAULT_MAX_CONNECTIONS = 32

OVERLOAD_BODY = b'{"error":"over_capacity","retry_after_sec":1}'
#: The exact bytes an over-capacity client receives.
OVERLOAD_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(OVERLOAD_BODY)).encode("ascii") + b"\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"\r\n" + OVERLOAD_BODY
)

# Unread request bytes discarded before closing a refused socket (so the close is a FIN, not a RST).
_DISCARD_LIMIT = 64 * 1024


def max_connections_from_env(environ: Optional[Mapping[str, str]] = None) -> int:
    """The permit count from ``CORRAL_MODULE_MAX_CONNECTIONS`` (default 32); a bad value is an error."""
    return positive_int(MAX_CONNECTIONS_ENV, DEFAULT_MAX_CONNECTIONS, environ)


def refuse(sock: socket.socket) -> None:
    """Writes the 503 and closes ``sock``; never blocks."""
    try:
        sock.setblocking(False)
        sock.send(OVERLOAD_RESPONSE)  # a socket's send buffer takes these few bytes at once
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    # Discard whatever request bytes already arrived, so closing sends a FIN rather than a RST
    # (a RST can make the client drop the 503 it has not read yet).
    discarded = 0
    try:
        while discarded < _DISCARD_LIMIT:
            chunk = sock.recv(16 * 1024)
            if not chunk:
                break
            discarded += len(chunk)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
