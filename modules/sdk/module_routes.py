"""A module: its identity, its callbacks and the protocol routes, independent of the transport.

``Module.route(method, path, query, headers, read_body)`` answers one request as ``(status, json)``
or raises ``HttpError``; ``module_http`` turns HTTP into that call. It runs ``on_init`` for
``middleware-init``, ``invoke_fn`` for an invocation (within its deadline, the decision checked), and
a module's own GET routes, turning their exceptions into logged 500s so the server keeps serving.

Standard library only.
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from bounded_http import BoundedThreadingHTTPServer
from deadline import DEADLINE_HEADER, DeadlineExceeded, check_deadline, parse_deadline, set_current
from module_contract import (
    HEALTH_PATH,
    HOST_API_VERSION,
    INIT_PATH,
    INVOKE_PATH,
    MIDDLEWARE_CONTRACT_VERSION,
    READY_PATH,
    dump_json,
    validate_decision,
    validate_envelope,
)
from module_errors import DecisionError, EnvelopeError, HttpError, ModuleConfigError
from module_log import log, module_id, name_module

Json = Any
RouteResult = Union[Json, Tuple[int, Json]]


class RouteRequest:
    """What an extra route receives: the path, the parsed query and the request headers."""

    def __init__(self, path: str, query: Dict[str, List[str]], headers: Mapping[str, str]) -> None:
        self.path = path
        self.query = query
        self.headers = headers

    def param(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The last value of query parameter ``name``, else ``default``."""
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
        name_module(name)
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
        """True once a ``middleware-init`` was accepted."""
        with self._lock:
            return self._init is not None

    def report(self) -> Dict[str, Any]:
        """The ModuleReport answered to ``middleware-init``."""
        return {
            "name": self.name,
            "description": self.description,
            "capabilities": list(self.capabilities),
            "middleware_contract_version": MIDDLEWARE_CONTRACT_VERSION,
            "host_api_version": HOST_API_VERSION,
            "output_contracts": list(self.output_contracts),
        }

    def record_error(self, exc: BaseException) -> None:
        """Counts a handler error on the server's counters (shown by /healthz)."""
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
                self.record_error(exc)
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
            self.record_error(exc)
            log("error", "invoke raised", envelope_id=envelope["id"], hook=envelope["hook"],
                error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            raise HttpError(500, "module_error", f"{type(exc).__name__}: {exc}") from None
        finally:
            set_current(None)
        try:
            validate_decision(decision)
            dump_json(decision)
        except (DecisionError, TypeError, ValueError) as exc:
            self.record_error(exc)
            log("error", "invoke returned an invalid decision", envelope_id=envelope["id"], error=str(exc))
            raise HttpError(500, "invalid_decision", str(exc)) from None
        return 200, decision

    def _extra_route(self, path: str, fn: ExtraRoute, request: RouteRequest) -> Tuple[int, Any]:
        try:
            result = fn(request)
        except HttpError:
            raise
        except Exception as exc:
            self.record_error(exc)
            log("error", "route raised", path=path, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            raise HttpError(500, "module_error", f"{type(exc).__name__}: {exc}") from None
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], int):
            return result[0], result[1]
        return 200, result

    def shutdown(self) -> None:
        """Runs ``on_shutdown`` once the server has drained; its exception is logged, not raised."""
        if self.on_shutdown is None:
            return
        try:
            self.on_shutdown()
        except Exception as exc:
            log("error", "on_shutdown raised", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())

