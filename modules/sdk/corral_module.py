"""corral_module: the plumbing of a Corral middleware module, so that a module is one small file.

A module supplies a name, a description, its capabilities and output contracts, and an
``invoke_fn(envelope) -> decision``; ``run_module(...)`` does the rest:

* serves on the socket the host holds for it (fd 3 with ``LISTEN_FDS=1`` and ``LISTEN_PID``, see
  ``socket_activation``), so a restart loses no connection; run by hand, it listens on ``127.0.0.1``
  only, on ``--port N`` or ``CORRAL_MODULE_PORT`` (``{port}`` / ``port: "auto"``),
  or on the Unix socket ``--socket PATH`` or ``CORRAL_MODULE_SOCKET`` (``http.transport: "unix"``);
* serves only the host that launched it: every route but ``/readyz`` and ``/healthz`` needs
  ``Authorization: Bearer <CORRAL_MODULE_TOKEN>`` (constant-time compare, 401 otherwise), and the
  module refuses to start without that token (see ``module_auth``);
* serves the module protocol (contract version "1", host API version "1")::

    GET  /readyz                200 as soon as the server serves (init comes after readiness)
    GET  /healthz               200 {"status": "ok", "initialised", ...server counters}
    POST /v1/middleware/init    MiddlewareInit -> on_init(config_subtree, init) -> ModuleReport
    POST /v1/middleware/invoke  WorkflowEnvelope -> invoke_fn(envelope) -> MiddlewareDecision
    GET  <extra route>          a module's own read-only routes

* bounds everything: active requests (``BoundedThreadingHTTPServer``), kept-alive idle connections (in
  number and time, see ``keep_alive``), POST bodies (Content-Length required, at most 1 MiB, JSON nested
  at most ``MAX_JSON_DEPTH`` = 64 deep);
* drops an invocation whose deadline (``X-Corral-Deadline-Ms``, sent by the host) has passed, before
  and after ``invoke_fn``; a module with side effects calls ``check_deadline()`` before it commits;
* answers errors as JSON ``{"error": code, "message": text}``: 400 malformed JSON / envelope / config,
  400 ``too_deep``, 401 no or wrong token, 404, 405, 409 invoke before init, 411 no Content-Length,
  413 body too large, 500 a module exception or an invalid decision (logged with its traceback; the
  server keeps serving), 504 ``deadline_exceeded``;
* on SIGTERM (or SIGINT): stops accepting, lets in-flight requests finish (bounded grace), calls
  ``on_shutdown()``, exits 0;
* logs one JSON object per line to stderr, tagged with ``CORRAL_MODULE_ID`` (tests redirect them with ``module_log.LOG_STREAM``).

The parts live one idea per file next to this one: ``module_contract`` (paths, versions, envelope and
decision checks), ``module_errors``, ``module_log``, ``module_env`` (module id, data dir),
``module_routes`` (``Module``), ``module_http`` (the request handler), ``module_server``
(``ModuleServer``), and ``module_auth``, ``deadline``, ``json_limits``, ``listen_address``,
``unix_listener``, ``socket_activation``, ``bounded_http`` (with ``request_gate``, ``keep_alive``, ``over_capacity``). This file is the entry point (``serve``, ``run_module``) and
re-exports their public names, so ``from corral_module import …`` is all a module author needs.

Standard library only.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from typing import Any, Callable, Dict, Mapping, NoReturn, Optional, Sequence

# Re-exported: module authors and tests import these from corral_module.
from bounded_http import BoundedThreadingHTTPServer  # noqa: F401
from deadline import DEADLINE_HEADER, DeadlineExceeded, check_deadline, parse_deadline  # noqa: F401
from json_limits import MAX_JSON_DEPTH, JsonTooDeep  # noqa: F401
from listen_address import PORT_ENV, SOCKET_ENV, resolve_listen, resolve_port  # noqa: F401
from module_auth import TOKEN_ENV, bearer_matches, check_token, token_from_env  # noqa: F401
from module_contract import (  # noqa: F401
    DECISIONS,
    HEALTH_PATH,
    HOST_API_VERSION,
    INIT_PATH,
    INVOKE_PATH,
    MAX_BODY_BYTES,
    MIDDLEWARE_CONTRACT_VERSION,
    OPEN_PATHS,
    READY_PATH,
    dump_json,
    parse_json,
    validate_decision,
    validate_envelope,
)
from module_env import DATA_DIR_ENV, MODULE_ID_ENV, data_dir  # noqa: F401
from module_errors import DecisionError, EnvelopeError, HttpError, ModuleConfigError  # noqa: F401
from module_http import ModuleRequestHandler  # noqa: F401
from module_log import log, module_id  # noqa: F401
from module_routes import ExtraRoute, Json, Module, RouteRequest, RouteResult  # noqa: F401
from module_server import DEFAULT_SHUTDOWN_GRACE_SEC, ModuleServer
from socket_activation import LISTEN_FDS_ENV, LISTEN_PID_ENV, inherited_listener  # noqa: F401


def serve(module: Module, argv: Optional[Sequence[str]] = None, shutdown_grace_sec: float = DEFAULT_SHUTDOWN_GRACE_SEC) -> NoReturn:
    """Runs ``module`` until SIGTERM/SIGINT, then drains and exits 0 (1 on a start-up failure)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        token = token_from_env()
        # The module's own children never need the credential; keep it out of their environment.
        os.environ.pop(TOKEN_ENV, None)
        listen = resolve_listen(argv)
        inherited = inherited_listener(socket.AF_UNIX if listen.socket_path is not None else socket.AF_INET)
        running = ModuleServer(module, port=listen.port or 0, socket_path=listen.socket_path, token=token,
                               listen_socket=inherited).start()
    except (OSError, ValueError) as exc:
        log("error", "module could not start", error=f"{type(exc).__name__}: {exc}")
        sys.exit(1)
    where = {"socket": running.socket_path} if running.socket_path is not None else {"host": "127.0.0.1", "port": running.port}
    log("info", "serving", name=module.name, max_connections=running.server.max_connections, pid=os.getpid(), **where)
    while not stop.wait(0.25):
        if not running.alive:
            log("error", "the accept loop ended unexpectedly")
            running.stop(shutdown_grace_sec)
            sys.exit(1)
    log("info", "stopping", active=running.server.active, grace_sec=shutdown_grace_sec)
    drained = running.stop(shutdown_grace_sec)
    counters = running.server.counters()
    if drained:
        log("info", "stopped", **counters)
        sys.exit(0)
    # Handlers still running past the grace: do not let interpreter finalisation race them.
    log("warn", "stopped with requests still in flight", **counters)
    sys.stderr.flush()
    os._exit(0)


def run_module(
    name: str,
    description: str,
    capabilities: Sequence[str],
    output_contracts: Sequence[str],
    invoke_fn: Callable[[Dict[str, Any]], Dict[str, Any]],
    extra_routes: Optional[Mapping[str, ExtraRoute]] = None,
    on_init: Optional[Callable[[Any, Dict[str, Any]], Any]] = None,
    on_shutdown: Optional[Callable[[], Any]] = None,
    argv: Optional[Sequence[str]] = None,
    shutdown_grace_sec: float = DEFAULT_SHUTDOWN_GRACE_SEC,
) -> NoReturn:
    """Builds a ``Module`` and serves it until SIGTERM (see the module docstring). Does not return."""
    module = Module(name, description, capabilities, output_contracts, invoke_fn,
                    extra_routes=extra_routes, on_init=on_init, on_shutdown=on_shutdown)
    serve(module, argv=argv, shutdown_grace_sec=shutdown_grace_sec)
