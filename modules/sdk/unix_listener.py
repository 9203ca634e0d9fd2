"""A module's Unix-socket listener (``http.transport: "unix"``): no loopback port at all.

The host creates a 0700 directory for module sockets and passes the path in ``CORRAL_MODULE_SOCKET``
(relative to the module's working directory when the module runs as its own user and cannot walk the
host's path; its work dir is then that directory).
The socket itself is created mode 0600 (the umask is narrowed around ``bind``, then the mode is set
again), a stale socket left by an earlier run of the module is replaced, and anything else already
at that path is an error rather than something to delete.

Standard library only.
"""
from __future__ import annotations

import os
import socket
import stat

#: ``sun_path`` holds 108 bytes on Linux, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 107


def check_socket_path(path: str) -> str:
    """Returns ``path`` (absolute, or relative to the cwd) if it can name a Unix socket; ``ValueError`` otherwise."""
    if not isinstance(path, str) or path.strip() == "" or "\0" in path:
        raise ValueError(f"the module socket path must be a non-empty path, got {path!r}")
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise ValueError(f"the module socket path {path} is longer than {MAX_SOCKET_PATH_BYTES} bytes (a Linux limit)")
    return path


def bind_private(sock: socket.socket, path: str) -> int:
    """Binds ``sock`` at ``path`` with mode 0600, replacing a stale socket; returns the socket file's inode."""
    check_socket_path(path)
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if not stat.S_ISSOCK(existing.st_mode):
            raise ValueError(f"{path} exists and is not a socket; refusing to replace it")
        os.unlink(path)  # a socket left by an earlier run: nobody can be listening on it any more
    previous = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    return os.lstat(path).st_ino


def remove_own_socket(path: str, inode: int) -> None:
    """Unlinks ``path`` if it is still the socket this listener created (never a successor's)."""
    try:
        if os.lstat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass
