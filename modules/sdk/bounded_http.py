"""BoundedThreadingHTTPServer: the stdlib ThreadingHTTPServer with HTTP/1.1 keep-alive and a bounded number of active requests.

The programming model is unchanged: write a ``http.server.BaseHTTPRequestHandler`` subclass (declare
``protocol_version = "HTTP/1.1"`` to keep connections alive). What the server does with a connection:

* Each *request* needs a permit (``max_connections``, default ``CORRAL_MODULE_MAX_CONNECTIONS`` or 32),
  taken without waiting when its first byte arrives and held until its response is out, however the
  handler ends (return, exception, timeout). A connection waiting for its next request holds none.
* With no permit free, the server writes a minimal, complete ``HTTP/1.1 503`` (``Retry-After: 1``,
  ``Connection: close``, ``Content-Length``, a tiny JSON body) and closes the connection; the handler
  never runs. A new connection whose request is already there when it is accepted gets that answer on
  the accept thread, so no thread is started for it.
* Idle connections are bounded in number and time (``keep_alive``): over ``max_idle_connections`` the
  oldest idle one is closed, and one idle for ``idle_timeout`` seconds is closed.
* Each request is bounded in time: every socket operation by ``socket_timeout`` (default 10 s), and the
  whole request by ``request_deadline`` (default 60 s, see ``request_deadline``).
* The server runs the stdlib's request steps itself, once per request (``request_steps``: a handler's
  own ``handle()`` and ``handle_one_request()`` are not used; ``setup()`` and ``finish()`` run once
  per connection). Writes are buffered and sent when ``do_<METHOD>`` returns, just after the permit is
  released (a handler that streams calls ``self.wfile.flush()``).
* ``counters()`` returns request and connection totals and the active and idle counts for status pages.
* A ``str`` server address is a Unix socket path: the server listens there (mode 0600) instead of on
  a TCP port, and removes its socket file when it closes (see ``unix_listener``).
* ``listen_socket=`` serves on a socket the host passed (fd 3, see ``socket_activation``) instead of
  binding ``server_address`` (which then only says the family: a ``str`` for a Unix socket).

Standard library only.
"""
from __future__ import annotations

import socket
import socketserver
import sys
import threading
import traceback
from http.server import ThreadingHTTPServer
from typing import Any, Callable, List, Optional, Union

from keep_alive import has_pending_bytes, idle_timeout_from_env, keep_alive_header, max_idle_from_env
from over_capacity import (  # noqa: F401  (re-exported: the server's public constants)
    DEFAULT_MAX_CONNECTIONS,
    MAX_CONNECTIONS_ENV,
    OVERLOAD_BODY,
    OVERLOAD_RESPONSE,
    max_connections_from_env,
    refuse,
)
from request_deadline import DeadlineWatchdog
from request_gate import GONE, GRANTED, RequestGate
from request_steps import serve_one_request
from socket_activation import adopt_listener
from unix_listener import bind_private, remove_own_socket

DEFAULT_SOCKET_TIMEOUT_SEC = 10.0
DEFAULT_REQUEST_DEADLINE_SEC = 60.0
# A handler's writes are buffered up to this many bytes (a larger write goes out at once).
_RESPONSE_BUFFER_BYTES = 64 * 1024


def _default_log(level: str, msg: str, **fields: Any) -> None:
    extra = "".join(f" {k}={v!r}" for k, v in fields.items())
    sys.stderr.write(f"{level} {msg}{extra}\n")
    sys.stderr.flush()


class _Connection:
    """One accepted socket and the handler object that serves its requests (hashed by identity)."""

    __slots__ = ("sock", "address", "handler")

    def __init__(self, sock: socket.socket, address: Any) -> None:
        self.sock = sock
        self.address = address
        self.handler: Any = None


def _pending(conn: _Connection) -> bool:
    return has_pending_bytes(conn.sock)


def _shut(conns: List[_Connection]) -> None:
    """Shuts sockets down from another thread: each owner's blocked read returns and it closes its socket."""
    for conn in conns:
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class BoundedThreadingHTTPServer(ThreadingHTTPServer):
    """A keep-alive ``ThreadingHTTPServer`` whose active requests are gated by permits (see module doc)."""

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
        request_deadline: Optional[float] = DEFAULT_REQUEST_DEADLINE_SEC,
        max_idle_connections: Optional[int] = None,
        idle_timeout: Optional[float] = None,
        log: Optional[Callable[..., None]] = None,
        listen_socket: Optional[socket.socket] = None,
    ) -> None:
        limit = max_connections_from_env() if max_connections is None else int(max_connections)
        if limit < 1:
            raise ValueError(f"max_connections must be >= 1, got {limit}")
        if socket_timeout is not None and socket_timeout <= 0:
            raise ValueError("socket_timeout must be positive or None")
        if request_deadline is not None and request_deadline <= 0:
            raise ValueError("request_deadline must be positive or None")
        idle_sec = idle_timeout_from_env() if idle_timeout is None else float(idle_timeout)
        if idle_sec <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_sec}")
        self.max_connections = limit
        self.socket_timeout = socket_timeout
        self.request_deadline = request_deadline
        self.idle_timeout = idle_sec
        self.log = log or _default_log
        self._gate: RequestGate[_Connection] = RequestGate(
            limit, max_idle_from_env() if max_idle_connections is None else int(max_idle_connections), _pending
        )
        self._errors_lock = threading.Lock()
        self._handler_errors = 0
        self._connection_errors = 0
        self._last_handler_error: Optional[str] = None
        self._watchdog: Optional[DeadlineWatchdog[_Connection]] = (
            None if request_deadline is None else DeadlineWatchdog(self._gate, request_deadline, _shut, self.log)
        )
        self._socket_inode: Optional[int] = None
        if isinstance(server_address, str):
            self.address_family = socket.AF_UNIX  # TCPServer.__init__ creates the socket from this
        super().__init__(server_address, RequestHandlerClass, bind_and_activate and listen_socket is None)
        if listen_socket is not None:
            adopt_listener(self, listen_socket)  # the host's socket, already listening; its file is the host's

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

    @property
    def max_idle_connections(self) -> int:
        """Idle connections kept at most."""
        return self._gate.max_idle

    @property
    def keeping_alive(self) -> bool:
        """False once the server is closing: a response should then say ``Connection: close``."""
        return not self._gate.closing

    def keep_alive_header(self) -> str:
        """The ``Keep-Alive`` header value a response sends (the idle timeout, so clients close first)."""
        return keep_alive_header(self.idle_timeout)

    # -- accepting ---------------------------------------------------------------------------------

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """Runs on the accept thread: refuse at once (closing, or full with a request waiting), else start the connection's thread."""
        if self._gate.closing or (self._gate.full() and has_pending_bytes(request)):
            self._gate.refused()
            refuse(request)
            return
        conn = _Connection(request, client_address)
        try:
            if request.family in (socket.AF_INET, socket.AF_INET6):
                # A response written in more than one send would otherwise wait for the client's delayed ACK.
                request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _shut(self._gate.connection_opened(conn))
            threading.Thread(
                target=self._serve_connection, args=(conn,), name="bounded-http-connection", daemon=self.daemon_threads
            ).start()
        except Exception as exc:  # e.g. "can't start new thread": answer nothing, keep serving
            self.record_handler_error(exc)
            self.log("error", "could not start a connection thread", error=repr(exc))
            self._gate.connection_closed(conn)
            self.shutdown_request(request)

    # -- one connection: idle, then a request under a permit, then idle again ------------------------

    def _serve_connection(self, conn: _Connection) -> None:
        try:
            handler = self.RequestHandlerClass.__new__(self.RequestHandlerClass)
            handler.request, handler.client_address, handler.server = conn.sock, conn.address, self
            if handler.wbufsize == 0:
                handler.wbufsize = _RESPONSE_BUFFER_BYTES  # answers leave after the permit is free (request_steps)
            handler.setup()
            conn.handler = handler
            while self._next_request(conn):
                pass
        except Exception as exc:
            self.record_handler_error(exc)
            self.handle_error(conn.sock, conn.address)
        finally:
            self._gate.connection_closed(conn)
            if conn.handler is not None:
                try:
                    conn.handler.finish()
                except OSError:
                    pass
            self.shutdown_request(conn.sock)

    def _next_request(self, conn: _Connection) -> bool:
        """Waits (idle, no permit) for the next request and serves it; True to keep the connection."""
        sock, handler = conn.sock, conn.handler
        try:
            sock.settimeout(self.idle_timeout)
            arrived = len(handler.rfile.peek(1)) > 0  # at once when a pipelined request is already buffered
        except TimeoutError:
            self._gate.idle_timed_out(conn)
            return False
        except OSError:
            return False
        if not arrived:
            return False  # the client hung up, or the idle bound or drain shut the socket down
        outcome = self._gate.request_arrived(conn)
        if outcome == GONE:
            return False
        if outcome != GRANTED:
            refuse(sock)
            return False
        if self._watchdog is not None:
            self._watchdog.ensure_started()
        keep = False
        overdue: List[bool] = []

        def done() -> None:  # the handler returned: free the permit before its answer leaves
            if not overdue:
                overdue.append(self._gate.release(conn))

        try:
            sock.settimeout(self.socket_timeout)
            handler.close_connection = True
            serve_one_request(handler, done)
            keep = not handler.close_connection
        except (ConnectionError, TimeoutError) as exc:
            with self._errors_lock:
                self._connection_errors += 1
            self.log("warn", "connection ended early", client=str(conn.address), error=repr(exc))
        except Exception as exc:
            self.record_handler_error(exc)
            self.handle_error(sock, conn.address)
        finally:
            done()
            kept, evicted = self._gate.response_sent(conn, keep and not overdue[0])
        _shut(evicted)
        return kept

    # -- errors --------------------------------------------------------------------------------------

    def record_handler_error(self, exc: BaseException) -> None:
        """Counts a handler failure (also for failures a handler catches itself and answers 500)."""
        with self._errors_lock:
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

    # -- status and shutdown -----------------------------------------------------------------------

    def counters(self) -> dict:
        """A snapshot for status routes (``accepted`` and ``active`` count requests)."""
        gate = self._gate.snapshot()
        with self._errors_lock:
            errors = {
                "handler_errors": self._handler_errors,
                "connection_errors": self._connection_errors,
                "last_handler_error": self._last_handler_error,
            }
        return {
            "max_connections": self.max_connections,
            "max_idle_connections": self._gate.max_idle,
            "idle_timeout_sec": self.idle_timeout,
            **gate,
            **errors,
        }

    def server_close(self) -> None:
        _shut(self._gate.stop())
        super().server_close()
        if self._socket_inode is not None:
            remove_own_socket(str(self.server_address), self._socket_inode)

    @property
    def active(self) -> int:
        """Requests being served now."""
        return self._gate.active_count()

    @property
    def idle(self) -> int:
        """Connections waiting for their next request."""
        return self._gate.idle_count()

    def drain(self, timeout: float) -> bool:
        """Refuses new connections, closes idle ones and waits up to ``timeout`` s for active requests; True if none remain.

        An idle connection whose request already arrived is served (and then closed), not dropped.
        """
        _shut(self._gate.stop())
        return self._gate.wait_drained(timeout)
