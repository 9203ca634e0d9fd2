"""One request on a kept-alive connection: the stdlib's ``handle_one_request`` steps, with the permit
released between the handler's return and the flush that sends its response.

Why not call ``handle_one_request``: it flushes the response and only then returns, so a client could
read its answer, send its next request on another connection, and find the permit still held (a 503
for a client that never had two requests in flight). Here ``done()`` runs first; the connection's
write buffer (the server gives every handler one) holds the response until then.

Standard library only.
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any, Callable

#: The longest request line the stdlib accepts (a longer one is answered 414).
_MAX_REQUEST_LINE = 65536


def serve_one_request(handler: Any, done: Callable[[], None]) -> None:
    """Reads, parses and dispatches one request to ``handler.do_<METHOD>``; calls ``done()`` before sending its answer."""
    try:
        handler.raw_requestline = handler.rfile.readline(_MAX_REQUEST_LINE + 1)
        if len(handler.raw_requestline) > _MAX_REQUEST_LINE:
            handler.requestline = ""
            handler.request_version = ""
            handler.command = ""
            handler.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
            return
        if not handler.raw_requestline:
            handler.close_connection = True
            return
        if not handler.parse_request():
            return  # an error answer was written; it closes the connection
        method = getattr(handler, "do_" + handler.command, None)
        if method is None:
            handler.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({handler.command!r})")
            return
        method()
        done()
        handler.wfile.flush()
    except TimeoutError as exc:  # a read or a write timed out: drop the connection
        handler.log_error("Request timed out: %r", exc)
        handler.close_connection = True
