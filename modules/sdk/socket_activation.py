"""Socket activation: the listening socket the host holds for a module, passed as fd 3 (systemd's convention).

The host binds each module's socket itself (a loopback TCP port, or the Unix socket of
``http.transport: "unix"``), keeps it open across the module's restarts, and starts every launch with it
as fd 3, ``LISTEN_FDS=1`` and ``LISTEN_PID`` = the pid that runs the module (set by the launch's last
exec step, so it is right under a PID namespace too). Connections made while the module restarts wait
in the socket's backlog for the next process: none is refused or reset.

``inherited_listener(family)`` takes that socket when ``LISTEN_FDS``/``LISTEN_PID`` say it is this
process's (``None`` otherwise: a module run by hand binds its own from ``--port``/``--socket`` or
``CORRAL_MODULE_PORT``/``CORRAL_MODULE_SOCKET``). It checks that fd 3 is a stream socket of the family
the module was told to listen on, calls ``listen()`` on it (the host binds it without listening: its
own event loop would otherwise accept on it; on a socket that already listens this only sets the
backlog), marks it close-on-exec and removes ``LISTEN_*`` from the environment (systemd's
``unset_environment``), so a child of the module inherits neither. ``adopt_listener`` puts it into a
``socketserver`` server in place of the socket the server would have bound.

Standard library only.
"""
from __future__ import annotations

import os
import socket
import stat
from typing import Any, MutableMapping, Optional

LISTEN_FDS_ENV = "LISTEN_FDS"
LISTEN_PID_ENV = "LISTEN_PID"
LISTEN_FDNAMES_ENV = "LISTEN_FDNAMES"
#: The first passed descriptor (``SD_LISTEN_FDS_START``).
LISTEN_FDS_START = 3

_FAMILY_NAMES = {socket.AF_INET: "AF_INET (TCP)", socket.AF_INET6: "AF_INET6 (TCP)", socket.AF_UNIX: "AF_UNIX"}


def _family_name(family: int) -> str:
    return _FAMILY_NAMES.get(family, f"address family {family}")


def _unset(env: MutableMapping[str, str]) -> None:
    for name in (LISTEN_FDS_ENV, LISTEN_PID_ENV, LISTEN_FDNAMES_ENV):
        env.pop(name, None)


def _passed_count(env: MutableMapping[str, str]) -> int:
    """How many sockets ``LISTEN_FDS``/``LISTEN_PID`` pass to this process (0: none, or another process's)."""
    raw_fds = env.get(LISTEN_FDS_ENV)
    if raw_fds is None:
        return 0
    raw_pid = env.get(LISTEN_PID_ENV)
    if raw_pid is None or not raw_pid.strip().isdigit():
        raise ValueError(f"{LISTEN_FDS_ENV}={raw_fds} without a numeric {LISTEN_PID_ENV} (got {raw_pid!r}): "
                         f"the launcher must set {LISTEN_PID_ENV} to the module's pid")
    if int(raw_pid) != os.getpid():
        return 0  # meant for another process (a parent that did not unset it): not ours to take
    if not raw_fds.strip().isdigit():
        raise ValueError(f"{LISTEN_FDS_ENV} must be a count of descriptors, got {raw_fds!r}")
    return int(raw_fds)


def inherited_listener(family: int, backlog: int = 128,
                       environ: Optional[MutableMapping[str, str]] = None) -> Optional[socket.socket]:
    """The socket passed as fd 3 for this process, listening, or None when none is; ``ValueError`` when it is unusable.

    ``family`` is the one the module was told to listen on (``AF_UNIX`` for a socket path, else ``AF_INET``).
    """
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    try:
        count = _passed_count(env)
    finally:
        _unset(env)
    if count == 0:
        return None
    if count != 1:
        raise ValueError(f"{LISTEN_FDS_ENV}={count}: a Corral module takes exactly one socket (fd {LISTEN_FDS_START})")
    fd = LISTEN_FDS_START
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        raise ValueError(f"{LISTEN_FDS_ENV}=1 but fd {fd} is not open ({exc.strerror})") from None
    if not stat.S_ISSOCK(mode):
        raise ValueError(f"{LISTEN_FDS_ENV}=1 but fd {fd} is not a socket")
    sock = socket.socket(fileno=fd)
    try:
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"{LISTEN_FDS_ENV}=1 but fd {fd} is not a stream socket (type {sock.type})")
        if sock.family != family and not (family == socket.AF_INET and sock.family == socket.AF_INET6):
            raise ValueError(f"{LISTEN_FDS_ENV}=1 but fd {fd} is {_family_name(sock.family)}, "
                             f"and this module was told to listen on {_family_name(family)}")
        os.set_inheritable(fd, False)
        # The host's descriptor is non-blocking (its event loop made it); this server blocks in accept().
        sock.setblocking(True)
        sock.listen(backlog)
    except BaseException:
        sock.detach()  # leave fd 3 as it was: the error says what is wrong with it
        raise
    return sock


def adopt_listener(server: Any, sock: socket.socket) -> None:
    """Makes a ``socketserver`` server created with ``bind_and_activate=False`` serve on ``sock`` (already listening)."""
    server.socket.close()
    server.socket = sock
    address = sock.getsockname()
    server.server_address = address
    # What http.server's ``server_bind`` would have set (the Unix socket's path, or the TCP host and port).
    server.server_name, server.server_port = (address, 0) if isinstance(address, str) else (str(address[0]), address[1])
