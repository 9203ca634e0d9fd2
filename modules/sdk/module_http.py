"""The HTTP side of a module: the request handler that checks the token and speaks JSON.

Every route but the ready and health probes needs the launch's bearer token (401 before the body is
read or any module code runs). POST bodies need ``Content-Length``, at most ``MAX_BODY_BYTES``, JSON
at most ``MAX_JSON_DEPTH`` deep. Each response closes its connection. The server it runs in carries
``module`` (a ``Module``) and ``token`` (set by ``ModuleServer``).

Standard library only.
"""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any, Mapping, Optional
from urllib.parse import parse_qs, urlsplit

from json_limits import MAX_JSON_DEPTH, JsonTooDeep
from module_auth import bearer_matches
from module_contract import MAX_BODY_BYTES, OPEN_PATHS, dump_json, parse_json
from module_errors import HttpError
from module_log import log
from module_routes import Module

# A refused (401) request's body is read only up to this many bytes, never in full.
_REFUSED_BODY_READ_LIMIT = 64 * 1024


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
            module.record_error(exc)
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
