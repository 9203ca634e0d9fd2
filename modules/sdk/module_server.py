"""A running module server: the bounded HTTP server on a background thread, and its drain.

``ModuleServer(module, port=…, token=…)`` (or ``socket_path=…``) binds at once (or serves on
``listen_socket=``, the host's socket from ``socket_activation``); ``start()`` serves on
a daemon thread; ``stop(grace)`` stops accepting, closes idle keep-alive connections, waits up to
``grace`` seconds for in-flight requests (answering them with ``Connection: close``) and then runs the
module's ``on_shutdown``.

Standard library only.
"""
from __future__ import annotations

import threading
from typing import Any, Optional, Tuple, Union

from bounded_http import BoundedThreadingHTTPServer
from module_auth import check_token
from module_http import ModuleRequestHandler
from module_log import log
from module_routes import Module
from unix_listener import check_socket_path

DEFAULT_SHUTDOWN_GRACE_SEC = 2.0  # keep below the component's stop_timeout_ms


class ModuleServer:
    """A running module: its bounded server on a background thread. ``stop()`` drains and closes it.

    ``token`` is the credential every route but ready/health requires. ``socket_path`` listens on that
    Unix socket instead of ``host:port``; ``listen_socket`` (in ``server_kwargs``) serves on a socket
    already listening (``socket_path`` then only says it is a Unix one).
    """

    def __init__(self, module: Module, host: str = "127.0.0.1", port: int = 0, poll_interval: float = 0.1,
                 *, token: str, socket_path: Optional[str] = None, **server_kwargs: Any) -> None:
        self.module = module
        self.poll_interval = poll_interval
        server_kwargs.setdefault("log", log)
        checked_token = check_token(token)  # before binding: a refused server holds no socket
        address: Union[Tuple[str, int], str] = (host, port) if socket_path is None else check_socket_path(socket_path)
        self.server = BoundedThreadingHTTPServer(address, ModuleRequestHandler, **server_kwargs)
        self.server.module = module  # type: ignore[attr-defined]
        self.server.token = checked_token  # type: ignore[attr-defined]
        module.server = self.server
        self._thread = threading.Thread(target=self._serve, name="module-accept", daemon=True)
        self._stop_lock = threading.Lock()
        self._stopped = False

    def _serve(self) -> None:
        self.server.serve_forever(poll_interval=self.poll_interval)

    @property
    def port(self) -> int:
        """The TCP port it listens on (meaningless on a Unix socket)."""
        return self.server.server_address[1]

    @property
    def socket_path(self) -> Optional[str]:
        """The Unix socket it listens on, or None on TCP."""
        return self.server.socket_path

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, or ``unix:PATH`` on a Unix socket (the host's endpoint notation)."""
        path = self.server.socket_path
        return f"unix:{path}" if path is not None else f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        """True while the accept thread runs."""
        return self._thread.is_alive()

    def start(self) -> "ModuleServer":
        """Starts serving on a daemon thread; returns self."""
        self._thread.start()
        return self

    def stop(self, grace: float = DEFAULT_SHUTDOWN_GRACE_SEC) -> bool:
        """Stops accepting, waits up to ``grace`` s for in-flight requests, runs on_shutdown. True if drained."""
        with self._stop_lock:
            if self._stopped:
                return True
            self._stopped = True
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        drained = self.server.drain(grace)
        self.module.shutdown()
        return drained
