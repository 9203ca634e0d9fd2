"""The HTTP side of a module: the request handler that checks the token and speaks JSON.

Every route but the ready and health probes needs the launch's bearer token (401 before the body is
read or any module code runs). POST bodies need ``Content-Length``, at most ``MAX_BODY_BYTES``, JSON
at most ``MAX_JSON_DEPTH`` deep. Connections are kept alive between requests (``Keep-Alive: timeout=N``
tells the client how long) until the server closes; every request on a kept connection needs the token
again. The server it runs in carries ``module`` (a ``Module``) and ``token`` (set by ``ModuleServer``).

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

# A body no route read (a 401, a 404, an error) is read and dropped only up to this many bytes; a larger one closes the connection.
_REFUSED_BODY_READ_LIMIT = 64 * 1024


class ModuleRequestHandler(BaseHTTPRequestHandler):
    """Protocol plumbing: JSON in, JSON out, keep-alive connections."""

    protocol_version = "HTTP/1.1"
    server_version = "corral-module/1"
    sys_version = ""
    # Buffered writes: the head and the body leave in one send when the stdlib flushes after the request.
    wbufsize = 64 * 1024

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
        self._body_read = False
        if url.path not in OPEN_PATHS and not bearer_matches(self.headers.get("Authorization"), self.server.token):  # type: ignore[attr-defined]
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
        self._body_read = len(raw) == length
        if len(raw) != length:
            raise HttpError(400, "bad_request", "the body ended before Content-Length bytes")
        try:
            return parse_json(raw)
        except JsonTooDeep as exc:
            raise HttpError(400, "too_deep", f"{exc}; send at most {MAX_JSON_DEPTH}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(400, "bad_json", f"the body is not JSON: {exc}") from None

    def _settle_body(self) -> None:
        """Reads the rest of a body no route read when it is small; otherwise the connection closes after this answer.

        Unread body bytes would be taken for the next request on a kept connection; reading a small
        one also lets a close send a FIN, not a RST that could eat the answer.
        """
        if self._body_read or self.headers.get("Transfer-Encoding"):
            self.close_connection = self.close_connection or not self._body_read
            return
        try:
            length = int(str(self.headers.get("Content-Length", "0")).strip())
        except ValueError:
            self.close_connection = True
            return
        if length == 0:
            return
        if not 0 < length <= _REFUSED_BODY_READ_LIMIT:
            self.close_connection = True
            return
        try:
            self._body_read = len(self.rfile.read(length)) == length
        except OSError:
            pass
        self.close_connection = self.close_connection or not self._body_read

    def _send(self, status: int, payload: bytes, headers: Optional[Mapping[str, str]] = None) -> None:
        self._settle_body()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        server = self.server
        if self.close_connection or not server.keeping_alive:  # type: ignore[attr-defined]
            self.send_header("Connection", "close")  # also sets close_connection
        else:
            self.send_header("Keep-Alive", server.keep_alive_header())  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # no access log: the host traces invocations

    def log_message(self, format: str, *args: Any) -> None:
        log("warn", format % args, client=self.client_address[0] if self.client_address else None)
