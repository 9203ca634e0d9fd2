"""corral_module: the plumbing of a Corral middleware module, so that a module is one small file.

A module supplies a name, a description, its capabilities and output contracts, and an
``invoke_fn(envelope) -> decision``; ``run_module(...)`` does the rest:

* listens on ``127.0.0.1`` only, on ``--port N`` or ``CORRAL_MODULE_PORT`` (``{port}`` / ``port: "auto"``),
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

* bounds everything: active requests (``BoundedThreadingHTTPServer``), POST bodies (Content-Length
  required, at most 1 MiB, JSON nested at most ``MAX_JSON_DEPTH`` = 64 deep), one request per connection;
* drops an invocation whose deadline (``X-Corral-Deadline-Ms``, sent by the host) has passed, before
  and after ``invoke_fn``; a module with side effects calls ``check_deadline()`` before it commits;
* answers errors as JSON ``{"error": code, "message": text}``: 400 malformed JSON / envelope / config,
  400 ``too_deep``, 401 no or wrong token, 404, 405, 409 invoke before init, 411 no Content-Length,
  413 body too large, 500 a module exception or an invalid decision (logged with its traceback; the
  server keeps serving), 504 ``deadline_exceeded``;
* on SIGTERM (or SIGINT): stops accepting, lets in-flight requests finish (bounded grace), calls
  ``on_shutdown()``, exits 0;
* logs one JSON object per line to stderr, tagged with ``CORRAL_MODULE_ID``.

Standard library only.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, List, Mapping, NoReturn, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs, urlsplit

from bounded_http import BoundedThreadingHTTPServer
from deadline import DEADLINE_HEADER, DeadlineExceeded, check_deadline, parse_deadline, set_current
from json_limits import MAX_JSON_DEPTH, JsonTooDeep
from json_limits import parse_json as _parse_bounded_json
from listen_address import PORT_ENV, SOCKET_ENV, resolve_listen, resolve_port  # noqa: F401 (re-exported)
from module_auth import TOKEN_ENV, bearer_matches, check_token, token_from_env
from unix_listener import check_socket_path

MIDDLEWARE_CONTRACT_VERSION = "1"
HOST_API_VERSION = "1"

READY_PATH = "/readyz"
HEALTH_PATH = "/healthz"
INIT_PATH = "/v1/middleware/init"
INVOKE_PATH = "/v1/middleware/invoke"

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_SHUTDOWN_GRACE_SEC = 2.0  # keep below the component's stop_timeout_ms

#: Routes any local process may call (the host probes them before and while the module runs).
OPEN_PATHS = (READY_PATH, HEALTH_PATH)

MODULE_ID_ENV = "CORRAL_MODULE_ID"
DATA_DIR_ENV = "CORRAL_DATA_DIR"

DECISIONS = ("allow", "deny", "modify")

# A refused (401) request's body is read only up to this many bytes, never in full.
_REFUSED_BODY_READ_LIMIT = 64 * 1024

Json = Any
RouteResult = Union[Json, Tuple[int, Json]]


# ---------------------------------------------------------------------------------------------------
# Errors


class HttpError(Exception):
    """Raise from a route (or invoke_fn) to answer ``status`` with ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ModuleConfigError(ValueError):
    """Raise from ``on_init`` when the config subtree is invalid: the init answers 400 ``bad_config``."""


class EnvelopeError(ValueError):
    """A request body that is not a valid WorkflowEnvelope."""


class DecisionError(ValueError):
    """A value returned by ``invoke_fn`` that is not a valid MiddlewareDecision."""


# ---------------------------------------------------------------------------------------------------
# Logging: one JSON object per line on stderr


_log_lock = threading.Lock()
#: Where log lines go; None means the current ``sys.stderr`` (tests swap in a buffer).
LOG_STREAM: Optional[Any] = None
_module_name = [""]


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


# ---------------------------------------------------------------------------------------------------
# Contract validation


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def validate_envelope(value: Any) -> Dict[str, Any]:
    """Checks a WorkflowEnvelope (``id``, ``hook``, ``subject``, ``payload``, ``metadata``?, ``deadline_ms``?)."""
    if not isinstance(value, dict):
        raise EnvelopeError("the envelope must be a JSON object")
    for key in ("id", "hook"):
        if not isinstance(value.get(key), str) or value[key] == "":
            raise EnvelopeError(f"envelope.{key} must be a non-empty string")
    if not isinstance(value.get("subject"), str):
        raise EnvelopeError("envelope.subject must be a string")
    if "payload" not in value:
        raise EnvelopeError("envelope.payload is required (null is a valid payload)")
    if "metadata" in value and not isinstance(value["metadata"], dict):
        raise EnvelopeError("envelope.metadata must be an object when present")
    if "deadline_ms" in value:
        deadline = value["deadline_ms"]
        if not _is_int(deadline) or deadline <= 0:
            raise EnvelopeError("envelope.deadline_ms must be a positive integer when present")
    return value


def validate_decision(value: Any) -> Dict[str, Any]:
    """Checks a MiddlewareDecision: allow | deny (reason required) | modify (payload required)."""
    if not isinstance(value, dict):
        raise DecisionError(f"a decision must be a dict, got {type(value).__name__}")
    kind = value.get("decision")
    if kind not in DECISIONS:
        raise DecisionError(f"decision must be one of {', '.join(DECISIONS)}, got {kind!r}")
    if "reason" in value and not isinstance(value["reason"], str):
        raise DecisionError("reason must be a string when present")
    if kind == "deny" and not isinstance(value.get("reason"), str):
        raise DecisionError("a deny decision needs a reason")
    if kind == "modify" and "payload" not in value:
        raise DecisionError("a modify decision needs a payload")
    if "annotations" in value:
        annotations = value["annotations"]
        if not isinstance(annotations, dict) or not all(isinstance(k, str) for k in annotations):
            raise DecisionError("annotations must be an object with string keys")
    return value


def parse_json(raw: bytes) -> Any:
    """UTF-8 JSON, at most ``MAX_JSON_DEPTH`` deep (``JsonTooDeep``), no NaN/Infinity (``ValueError``)."""
    return _parse_bounded_json(raw, MAX_JSON_DEPTH)


def dump_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------------------------------
# The module


class RouteRequest:
    """What an extra route receives: the path, the parsed query and the request headers."""

    def __init__(self, path: str, query: Dict[str, List[str]], headers: Mapping[str, str]) -> None:
        self.path = path
        self.query = query
        self.headers = headers

    def param(self, name: str, default: Optional[str] = None) -> Optional[str]:
        values = self.query.get(name)
        return values[-1] if values else default


ExtraRoute = Callable[[RouteRequest], RouteResult]


class Module:
    """A module's identity, its callbacks and the protocol routes (transport-independent)."""

    def __init__(
        self,
        name: str,
        description: str,
        capabilities: Sequence[str],
        output_contracts: Sequence[str],
        invoke_fn: Callable[[Dict[str, Any]], Dict[str, Any]],
        extra_routes: Optional[Mapping[str, ExtraRoute]] = None,
        on_init: Optional[Callable[[Any, Dict[str, Any]], Any]] = None,
        on_shutdown: Optional[Callable[[], Any]] = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a module needs a non-empty name")
        for label, items in (("capabilities", capabilities), ("output_contracts", output_contracts)):
            if isinstance(items, str) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"{label} must be a list of strings")
        routes = dict(extra_routes or {})
        for path in routes:
            if not path.startswith("/") or path in (READY_PATH, HEALTH_PATH, INIT_PATH, INVOKE_PATH):
                raise ValueError(f"extra route {path!r} must start with / and not shadow a protocol route")
        self.name = name
        if not _module_name[0]:
            _module_name[0] = name
        self.description = description
        self.capabilities = list(capabilities)
        self.output_contracts = list(output_contracts)
        self.invoke_fn = invoke_fn
        self.extra_routes = routes
        self.on_init = on_init
        self.on_shutdown = on_shutdown
        self.server: Optional[BoundedThreadingHTTPServer] = None
        self.started_at = time.monotonic()
        self._lock = threading.Lock()
        self._init: Optional[Dict[str, Any]] = None

    # -- state ---------------------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        with self._lock:
            return self._init is not None

    def report(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "capabilities": list(self.capabilities),
            "middleware_contract_version": MIDDLEWARE_CONTRACT_VERSION,
            "host_api_version": HOST_API_VERSION,
            "output_contracts": list(self.output_contracts),
        }

    def _record_error(self, exc: BaseException) -> None:
        if self.server is not None:
            self.server.record_handler_error(exc)

    # -- routing -------------------------------------------------------------------------------------

    def route(self, method: str, path: str, query: Dict[str, List[str]], headers: Mapping[str, str],
              read_body: Callable[[], Any]) -> Tuple[int, Any]:
        """Answers one request as ``(status, json)``; raises ``HttpError`` for error answers."""
        get_routes = {READY_PATH: self._readyz, HEALTH_PATH: self._healthz}
        post_routes = {INIT_PATH: self._init_route, INVOKE_PATH: self._invoke_route}
        if method == "GET" and path in get_routes:
            return get_routes[path]()
        if method == "GET" and path in self.extra_routes:
            return self._extra_route(path, self.extra_routes[path], RouteRequest(path, query, headers))
        if method == "POST" and path == INVOKE_PATH:
            return self._invoke_route(read_body(), headers.get(DEADLINE_HEADER))
        if method == "POST" and path in post_routes:
            return post_routes[path](read_body())
        if path in get_routes or path in self.extra_routes:
            raise HttpError(405, "method_not_allowed", f"{path} answers GET only")
        if path in post_routes:
            raise HttpError(405, "method_not_allowed", f"{path} answers POST only")
        raise HttpError(404, "not_found", f"no route {method} {path}")

    def _readyz(self) -> Tuple[int, Any]:
        return 200, {"status": "ready", "initialised": self.initialised}

    def _healthz(self) -> Tuple[int, Any]:
        body: Dict[str, Any] = {
            "status": "ok",
            "module": self.name,
            "module_id": module_id(self.name),
            "initialised": self.initialised,
            "uptime_sec": round(time.monotonic() - self.started_at, 3),
        }
        if self.server is not None:
            body.update(self.server.counters())
        return 200, body

    def _init_route(self, body: Any) -> Tuple[int, Any]:
        if not isinstance(body, dict) or body.get("type") != "middleware-init":
            raise HttpError(400, "bad_init", 'expected a middleware-init object ({"type": "middleware-init", ...})')
        config = body.get("config")
        if config is None:
            config = {}  # the host omits `config` when there is no `modules.<id>` subtree
        if body.get("middleware_contract_version") not in (None, MIDDLEWARE_CONTRACT_VERSION):
            log("warn", "host speaks another middleware contract", host=body.get("middleware_contract_version"),
                module=MIDDLEWARE_CONTRACT_VERSION)
        if self.on_init is not None:
            try:
                self.on_init(config, body)
            except ModuleConfigError as exc:
                log("error", "config subtree rejected", error=str(exc))
                raise HttpError(400, "bad_config", str(exc)) from None
            except HttpError:
                raise
            except Exception as exc:
                self._record_error(exc)
                log("error", "on_init raised", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
                raise HttpError(500, "init_failed", f"{type(exc).__name__}: {exc}") from None
        with self._lock:
            self._init = body
        log("info", "initialised", component_id=body.get("component_id"), host_version=body.get("host_version"))
        return 200, self.report()

    def _invoke_route(self, body: Any, deadline_header: Optional[str] = None) -> Tuple[int, Any]:
        if not self.initialised:
            raise HttpError(409, "not_initialised", "the module has not received middleware-init yet")
        try:
            deadline_ms = parse_deadline(deadline_header)
        except ValueError as exc:
            raise HttpError(400, "bad_request", str(exc)) from None
        try:
            envelope = validate_envelope(body)
        except EnvelopeError as exc:
            raise HttpError(400, "bad_envelope", str(exc)) from None
        set_current(deadline_ms)
        try:
            check_deadline("the invocation")
            decision = self.invoke_fn(envelope)
            check_deadline("the answer")
        except DeadlineExceeded as exc:
            log("warn", "invocation dropped: its deadline passed", envelope_id=envelope["id"], error=str(exc))
            raise HttpError(504, "deadline_exceeded", str(exc)) from None
        except HttpError:
            raise
        except Exception as exc:
            self._record_error(exc)
            log("error", "invoke raised", envelope_id=envelope["id"], hook=envelope["hook"],
                error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            raise HttpError(500, "module_error", f"{type(exc).__name__}: {exc}") from None
        finally:
            set_current(None)
        try:
            validate_decision(decision)
            dump_json(decision)
        except (DecisionError, TypeError, ValueError) as exc:
            self._record_error(exc)
            log("error", "invoke returned an invalid decision", envelope_id=envelope["id"], error=str(exc))
            raise HttpError(500, "invalid_decision", str(exc)) from None
        return 200, decision

    def _extra_route(self, path: str, fn: ExtraRoute, request: RouteRequest) -> Tuple[int, Any]:
        try:
            result = fn(request)
        except HttpError:
            raise
        except Exception as exc:
            self._record_error(exc)
            log("error", "route raised", path=path, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            raise HttpError(500, "module_error", f"{type(exc).__name__}: {exc}") from None
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], int):
            return result[0], result[1]
        return 200, result

    def shutdown(self) -> None:
        if self.on_shutdown is None:
            return
        try:
            self.on_shutdown()
        except Exception as exc:
            log("error", "on_shutdown raised", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())


# ---------------------------------------------------------------------------------------------------
# HTTP


class ModuleRequestHandler(BaseHTTPRequestHandler):
    """Protocol plumbing: JSON in, JSON out, one request per connection."""

    protocol_version = "HTTP/1.1"
    server_version = "corral-module/1"
    sys_version = ""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        module: Module = self.server.module  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        if url.path not in OPEN_PATHS and not bearer_matches(self.headers.get("Authorization"), self.server.token):  # type: ignore[attr-defined]
            self._discard_small_body()
            self._send(401, dump_json({"error": "unauthorized", "message":
                                       "this module serves only the host that launched it: send Authorization: Bearer <token>"}),
                       {"WWW-Authenticate": "Bearer"})
            return
        try:
            status, body = module.route(method, url.path, query, self.headers, self._read_json_body)
            payload = dump_json(body)
        except HttpError as exc:
            status, payload = exc.status, dump_json({"error": exc.code, "message": exc.message})
        except (TypeError, ValueError) as exc:  # a route answered something that is not JSON
            module._record_error(exc)
            log("error", "route answered a non-JSON value", path=url.path, error=str(exc))
            status, payload = 500, dump_json({"error": "module_error", "message": str(exc)})
        self._send(status, payload)

    def _read_json_body(self) -> Any:
        if self.headers.get("Transfer-Encoding"):
            raise HttpError(411, "length_required", "send the body with Content-Length, not Transfer-Encoding")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            raise HttpError(411, "length_required", "a POST needs Content-Length")
        try:
            length = int(raw_length.strip())
        except ValueError:
            raise HttpError(400, "bad_request", "Content-Length must be an integer") from None
        if length < 0:
            raise HttpError(400, "bad_request", "Content-Length must not be negative")
        if length > MAX_BODY_BYTES:
            raise HttpError(413, "payload_too_large", f"the body is {length} bytes; at most {MAX_BODY_BYTES} are accepted")
        raw = self.rfile.read(length)
        if len(raw) != length:
            raise HttpError(400, "bad_request", "the body ended before Content-Length bytes")
        try:
            return parse_json(raw)
        except JsonTooDeep as exc:
            raise HttpError(400, "too_deep", f"{exc}; send at most {MAX_JSON_DEPTH}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(400, "bad_json", f"the body is not JSON: {exc}") from None

    def _discard_small_body(self) -> None:
        """Reads a refused request's body when it is small, so closing sends FIN, not a RST that could eat the answer."""
        try:
            length = int(str(self.headers.get("Content-Length", "0")).strip())
        except ValueError:
            return
        if 0 < length <= _REFUSED_BODY_READ_LIMIT:
            try:
                self.rfile.read(length)
            except OSError:
                pass

    def _send(self, status: int, payload: bytes, headers: Optional[Mapping[str, str]] = None) -> None:
        self.close_connection = True
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # no access log: the host traces invocations

    def log_message(self, format: str, *args: Any) -> None:
        log("warn", format % args, client=self.client_address[0] if self.client_address else None)


class ModuleServer:
    """A running module: its bounded server on a background thread. ``stop()`` drains and closes it.

    ``token`` is the credential every route but ready/health requires. ``socket_path`` listens on that
    Unix socket instead of ``host:port``.
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
        return self.server.server_address[1]

    @property
    def socket_path(self) -> Optional[str]:
        return self.server.socket_path

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, or ``unix:PATH`` on a Unix socket (the host's endpoint notation)."""
        path = self.server.socket_path
        return f"unix:{path}" if path is not None else f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> "ModuleServer":
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


# ---------------------------------------------------------------------------------------------------
# Entry point


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
        running = ModuleServer(module, port=listen.port or 0, socket_path=listen.socket_path, token=token).start()
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
