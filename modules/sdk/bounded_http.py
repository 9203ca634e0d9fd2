"""BoundedThreadingHTTPServer: the stdlib ThreadingHTTPServer with a bounded number of active requests.

The programming model is unchanged: write a ``http.server.BaseHTTPRequestHandler`` subclass. What
changes is what the server does with a connection it accepts:

* Each accepted connection needs a permit (``max_connections``, default ``CORRAL_MODULE_MAX_CONNECTIONS``
  or 32). The permit is taken without waiting, in ``process_request`` on the accept thread.
* With no permit free, the accept thread writes a minimal, complete ``HTTP/1.1 503`` (``Retry-After: 1``,
  ``Connection: close``, ``Content-Length``, a tiny JSON body) straight onto the socket and closes it.
  No handler thread is started for that connection.
* A handler thread holds its permit until it ends, however it ends (return, exception, timeout).
* Every handler socket gets a timeout (``socket_timeout``, default 10 s) so a client that stops
  sending cannot hold a permit, and an overall ``connection_deadline`` (default 60 s) after which a
  watchdog shuts the socket down, so a client that trickles bytes cannot hold one forever either.
* ``counters()`` returns the accepted / rejected / error totals and the active count for status pages.
* A ``str`` server address is a Unix socket path: the server listens there (mode 0600) instead of on
  a TCP port, and removes its socket file when it closes (see ``unix_listener``).

Standard library only.
"""
from __future__ import annotations

import os
import socket
import socketserver
import sys
import threading
import time
import traceback
from http.server import ThreadingHTTPServer
from typing import Any, Callable, Mapping, Optional, Union

from unix_listener import bind_private, remove_own_socket

MAX_CONNECTIONS_ENV = "CORRAL_MODULE_MAX_CONNECTIONS"
DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_SOCKET_TIMEOUT_SEC = 10.0
DEFAULT_CONNECTION_DEADLINE_SEC = 60.0

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

# Unread request bytes discarded before closing a rejected socket (so the close is a FIN, not a RST).
_DISCARD_LIMIT = 64 * 1024


def max_connections_from_env(environ: Optional[Mapping[str, str]] = None) -> int:
    """The permit count from ``CORRAL_MODULE_MAX_CONNECTIONS`` (default 32); a bad value is an error."""
    env = os.environ if environ is None else environ
    raw = env.get(MAX_CONNECTIONS_ENV, "").strip()
    if raw == "":
        return DEFAULT_MAX_CONNECTIONS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_CONNECTIONS_ENV} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{MAX_CONNECTIONS_ENV} must be a positive integer, got {raw!r}")
    return value


def _default_log(level: str, msg: str, **fields: Any) -> None:
    extra = "".join(f" {k}={v!r}" for k, v in fields.items())
    sys.stderr.write(f"{level} {msg}{extra}\n")
    sys.stderr.flush()


class BoundedThreadingHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` whose active requests are gated by a semaphore (see module doc)."""

    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: connections wait here (not in threads) until accepted or refused.
    request_queue_size = 128

    def __init__(
        self,
        server_address: Union[tuple, str],
        RequestHandlerClass: Callable[..., Any],
        bind_and_activate: bool = True,
        *,
        max_connections: Optional[int] = None,
        socket_timeout: Optional[float] = DEFAULT_SOCKET_TIMEOUT_SEC,
        connection_deadline: Optional[float] = DEFAULT_CONNECTION_DEADLINE_SEC,
        log: Optional[Callable[..., None]] = None,
    ) -> None:
        limit = max_connections_from_env() if max_connections is None else int(max_connections)
        if limit < 1:
            raise ValueError(f"max_connections must be >= 1, got {limit}")
        if socket_timeout is not None and socket_timeout <= 0:
            raise ValueError("socket_timeout must be positive or None")
        if connection_deadline is not None and connection_deadline <= 0:
            raise ValueError("connection_deadline must be positive or None")
        self.max_connections = limit
        self.socket_timeout = socket_timeout
        self.connection_deadline = connection_deadline
        self.log = log or _default_log
        self._permits = threading.BoundedSemaphore(limit)
        self._state = threading.Condition()
        self._active: dict = {}  # socket -> monotonic start time
        self._closing = False
        self._watchdog: Optional[threading.Thread] = None
        self._accepted = 0
        self._rejected = 0
        self._handler_errors = 0
        self._connection_errors = 0
        self._deadline_closed = 0
        self._last_handler_error: Optional[str] = None
        self._socket_inode: Optional[int] = None
        if isinstance(server_address, str):
            self.address_family = socket.AF_UNIX  # TCPServer.__init__ creates the socket from this
        super().__init__(server_address, RequestHandlerClass, bind_and_activate)

    # -- binding ---------------------------------------------------------------------------------

    def server_bind(self) -> None:
        if self.address_family == socket.AF_UNIX:
            path = str(self.server_address)
            self._socket_inode = bind_private(self.socket, path)
            self.server_address = path
            self.server_name = path
            self.server_port = 0
            return
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    @property
    def port(self) -> int:
        """The bound TCP port (0 on a Unix socket)."""
        return 0 if self.address_family == socket.AF_UNIX else self.server_address[1]

    @property
    def socket_path(self) -> Optional[str]:
        """The Unix socket path, None on TCP."""
        return str(self.server_address) if self.address_family == socket.AF_UNIX else None

    # -- accepting ---------------------------------------------------------------------------------

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """Runs on the accept thread: take a permit or refuse with 503, never wait."""
        if self._closing or not self._permits.acquire(blocking=False):
            self._reject_over_capacity(request)
            return
        try:
            if self.socket_timeout is not None:
                request.settimeout(self.socket_timeout)
            with self._state:
                self._accepted += 1
                self._active[request] = time.monotonic()
            self._ensure_watchdog()
            thread = threading.Thread(
                target=self._handle_with_permit,
                args=(request, client_address),
                name="bounded-http-handler",
                daemon=self.daemon_threads,
            )
            thread.start()
        except Exception as exc:  # e.g. "can't start new thread": answer nothing, keep serving
            self.record_handler_error(exc)
            self.log("error", "could not start a handler thread", error=repr(exc))
            self._release(request)
            self.shutdown_request(request)

    def _reject_over_capacity(self, request: socket.socket) -> None:
        with self._state:
            self._rejected += 1
        try:
            request.setblocking(False)
            request.send(OVERLOAD_RESPONSE)  # a fresh socket's send buffer takes these few bytes at once
        except OSError:
            pass
        try:
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        # Discard whatever request bytes already arrived, so closing sends a FIN rather than a RST
        # (a RST can make the client drop the 503 it has not read yet). Never blocks.
        discarded = 0
        try:
            while discarded < _DISCARD_LIMIT:
                chunk = request.recv(16 * 1024)
                if not chunk:
                    break
                discarded += len(chunk)
        except OSError:
            pass
        try:
            request.close()
        except OSError:
            pass

    def _handle_with_permit(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except (ConnectionError, TimeoutError) as exc:
            with self._state:
                self._connection_errors += 1
            self.log("warn", "connection ended early", client=str(client_address), error=repr(exc))
        except Exception as exc:
            self.record_handler_error(exc)
            self.handle_error(request, client_address)
        finally:
            # The response is out: free the permit first, then close the socket.
            try:
                self._release(request)
            finally:
                self.shutdown_request(request)

    def _release(self, request: socket.socket) -> None:
        with self._state:
            self._active.pop(request, None)
            self._state.notify_all()
        self._permits.release()

    # -- errors --------------------------------------------------------------------------------------

    def record_handler_error(self, exc: BaseException) -> None:
        """Counts a handler failure (also for failures a handler catches itself and answers 500)."""
        with self._state:
            self._handler_errors += 1
            self._last_handler_error = f"{type(exc).__name__}: {exc}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # One line, not the stdlib's multi-line traceback dump.
        self.log(
            "error",
            "request handler raised",
            client=str(client_address),
            error=self._last_handler_error,
            traceback=traceback.format_exc(),
        )

    # -- connection deadline ---------------------------------------------------------------------

    def _ensure_watchdog(self) -> None:
        if self.connection_deadline is None or self._watchdog is not None:
            return
        with self._state:
            if self._watchdog is not None:
                return
            self._watchdog = threading.Thread(target=self._watch, name="bounded-http-watchdog", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        deadline = float(self.connection_deadline or 0)
        tick = min(1.0, max(0.02, deadline / 4))
        while True:
            with self._state:
                if self._closing and not self._active:
                    return
                self._state.wait(tick)
                now = time.monotonic()
                overdue = [s for s, started in self._active.items() if now - started > deadline]
                for sock in overdue:
                    self._active[sock] = float("inf")  # shut down once
            for sock in overdue:
                with self._state:
                    self._deadline_closed += 1
                self.log("warn", "connection passed its deadline, shutting it down", deadline_sec=deadline)
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # the handler's blocked read or write returns
                except OSError:
                    pass

    # -- status and shutdown -----------------------------------------------------------------------

    def counters(self) -> dict:
        """A snapshot for status routes."""
        with self._state:
            return {
                "max_connections": self.max_connections,
                "active": len(self._active),
                "accepted": self._accepted,
                "rejected_over_capacity": self._rejected,
                "handler_errors": self._handler_errors,
                "connection_errors": self._connection_errors,
                "deadline_closed": self._deadline_closed,
                "last_handler_error": self._last_handler_error,
            }

    def server_close(self) -> None:
        with self._state:
            self._closing = True
            self._state.notify_all()
        super().server_close()
        if self._socket_inode is not None:
            remove_own_socket(str(self.server_address), self._socket_inode)

    @property
    def active(self) -> int:
        with self._state:
            return len(self._active)

    def drain(self, timeout: float) -> bool:
        """Refuses new connections and waits up to ``timeout`` s for active handlers; True if none remain."""
        end = time.monotonic() + max(0.0, timeout)
        with self._state:
            self._closing = True
            while self._active:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._state.wait(left)
            self._state.notify_all()
            return True
