"""A client for the Corral broker (protocol 1) over its Unix socket. Standard library only.

Frames are a 4-byte big-endian length, then that many bytes (1..65536) of UTF-8 JSON. Each attempt
sends one request with a generated ``request_id`` and reads one reply frame; ``timeout`` is the deadline
of each attempt. The functions ``hello`` and ``admin`` open a connection per attempt and close it; a
``BrokerClient`` keeps a few connections open between calls (the broker serves frame after frame on one
connection), so a hello does not pay a connect. An ``error`` reply carrying
``retry_after_ms`` is retried after that delay, up to ``max_retries`` times, with the same
``request_id``.

Failures raise ``BrokerError(code, message)``: ``code`` is the broker's stable code for a refusal
(``unknown_service``, ``overloaded``, ...), or ``timeout`` / ``connection`` / ``protocol`` when no
usable reply came back.

    python3 corral_broker.py hello redis [--version 7] [--socket PATH]
    python3 corral_broker.py admin status [--socket PATH]

prints the reply as JSON (exit 0), or the error as JSON on stderr (exit 1). The socket defaults to
``$CORRAL_DATA_DIR/run/broker.sock`` (``~/.local/state/corral/run/broker.sock``).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

PROTOCOL_VERSION = 1
FRAME_HEADER_BYTES = 4
MAX_FRAME_BYTES = 65536
DEFAULT_TIMEOUT_SEC = 10.0
DEFAULT_MAX_RETRIES = 5
ADMIN_VERBS = ("status", "healthz", "readyz", "metrics", "shutdown")
DATA_DIR_ENV = "CORRAL_DATA_DIR"
#: Connections a ``BrokerClient`` keeps open between calls.
DEFAULT_IDLE_CONNECTIONS = 4
#: How long a kept connection waits for the next call: under the broker's read deadline (10 s), which closes it.
DEFAULT_IDLE_SEC = 5.0

#: Codes of failures on this side of the socket (the broker's own codes are in its replies).
TIMEOUT = "timeout"
CONNECTION = "connection"
PROTOCOL = "protocol"


class BrokerError(Exception):
    """A call without a usable answer: the broker's refusal ``code``, or timeout / connection / protocol."""

    def __init__(self, code: str, message: str, retry_after_ms: Optional[int] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


def encode_frame(value: Any) -> bytes:
    """``value`` as one frame; a body of 0 or over 65536 bytes raises ``BrokerError("protocol", ...)``."""
    try:
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise BrokerError(PROTOCOL, f"value has no JSON form: {error}") from None
    if not 1 <= len(body) <= MAX_FRAME_BYTES:
        raise BrokerError(PROTOCOL, f"a frame body is 1 to {MAX_FRAME_BYTES} bytes, this one is {len(body)}")
    return struct.pack(">I", len(body)) + body


def _read_exactly(sock: socket.socket, count: int, deadline: float, what: str) -> bytes:
    """Exactly ``count`` bytes, or ``BrokerError`` (timeout at ``deadline``, connection on an early close)."""
    chunks: List[bytes] = []
    received = 0
    while received < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerError(TIMEOUT, f"no complete reply within the deadline ({what})")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(count - received, 65536))
        except socket.timeout:
            raise BrokerError(TIMEOUT, f"no complete reply within the deadline ({what})") from None
        except OSError as error:
            raise BrokerError(CONNECTION, f"reading the reply failed: {error}") from None
        if not chunk:
            if received == 0 and what == "frame header":
                raise BrokerError(CONNECTION, "the broker closed the connection without a reply")
            raise BrokerError(CONNECTION, f"the broker closed the connection {received} bytes into the {what}")
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket, deadline: float) -> Any:
    """One frame's JSON value: the length is checked (1..65536) before the body is read."""
    header = _read_exactly(sock, FRAME_HEADER_BYTES, deadline, "frame header")
    (length,) = struct.unpack(">I", header)
    if length == 0 or length > MAX_FRAME_BYTES:
        raise BrokerError(PROTOCOL, f"reply frame length {length} is outside 1..{MAX_FRAME_BYTES}")
    body = _read_exactly(sock, length, deadline, "frame body")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BrokerError(PROTOCOL, "reply frame is not valid UTF-8") from None
    except ValueError as error:
        raise BrokerError(PROTOCOL, f"reply frame is not JSON: {error}") from None


def _connect(socket_path: str, timeout: float) -> socket.socket:
    """A new connection to the broker, or ``BrokerError`` (timeout / connection)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path)
    except socket.timeout:
        sock.close()
        raise BrokerError(TIMEOUT, f"no connection to {socket_path} within {timeout} s") from None
    except OSError as error:
        sock.close()
        raise BrokerError(CONNECTION, f"cannot reach the broker at {socket_path}: {error}") from None
    return sock


def _exchange_on(sock: socket.socket, frame: bytes, timeout: float) -> Any:
    """Sends ``frame`` on ``sock`` and answers the reply frame's JSON value."""
    deadline = time.monotonic() + timeout
    sock.settimeout(timeout)
    try:
        sock.sendall(frame)
    except socket.timeout:
        raise BrokerError(TIMEOUT, "the request could not be sent within the deadline") from None
    except OSError as error:
        raise BrokerError(CONNECTION, f"sending the request failed: {error}") from None
    return read_frame(sock, deadline)


def _exchange(socket_path: str, frame: bytes, timeout: float) -> Any:
    """Sends ``frame`` on a new connection and answers the reply frame's JSON value."""
    sock = _connect(socket_path, timeout)
    try:
        return _exchange_on(sock, frame, timeout)
    finally:
        sock.close()


Exchange = Callable[[bytes, float], Any]


def _call(socket_path: str, request: Dict[str, Any], timeout: float, max_retries: int,
          exchange: Optional[Exchange] = None) -> Dict[str, Any]:
    """Sends ``request`` until a reply other than a retryable refusal; raises ``BrokerError`` otherwise."""
    request_id = uuid.uuid4().hex
    frame = encode_frame({**request, "request_id": request_id})
    send: Exchange = exchange if exchange is not None else (lambda data, limit: _exchange(socket_path, data, limit))
    retries = 0
    while True:
        reply = send(frame, timeout)
        if not isinstance(reply, dict) or not isinstance(reply.get("type"), str):
            raise BrokerError(PROTOCOL, f"reply is not a typed JSON object: {json.dumps(reply)[:200]}")
        reply_id = reply.get("request_id")
        if reply["type"] == "error":
            if reply_id is not None and reply_id != request_id:
                raise BrokerError(PROTOCOL, f"reply request_id {reply_id!r} is not {request_id!r}")
            code = reply.get("code")
            message = reply.get("message")
            retry_after_ms = reply.get("retry_after_ms")
            if not isinstance(code, str) or not isinstance(message, str):
                raise BrokerError(PROTOCOL, "error reply without a string code and message")
            if retry_after_ms is not None and (
                isinstance(retry_after_ms, bool) or not isinstance(retry_after_ms, int) or retry_after_ms < 0
            ):
                raise BrokerError(PROTOCOL, f"error reply with a bad retry_after_ms: {retry_after_ms!r}")
            if retry_after_ms is not None and retries < max_retries:
                retries += 1
                time.sleep(retry_after_ms / 1000.0)
                continue
            raise BrokerError(code, message, retry_after_ms)
        if reply_id != request_id:
            raise BrokerError(PROTOCOL, f"reply request_id {reply_id!r} is not {request_id!r}")
        return reply


def _hello_request(service: str, version: Optional[str]) -> Dict[str, Any]:
    request: Dict[str, Any] = {"type": "hello", "service": service, "protocol": PROTOCOL_VERSION}
    if version is not None:
        request["version"] = version
    return request


def _checked_hello(reply: Dict[str, Any]) -> Dict[str, Any]:
    if reply["type"] != "hello.ok" or not isinstance(reply.get("endpoint"), dict):
        raise BrokerError(PROTOCOL, f"expected a hello.ok reply with an endpoint, got {reply['type']!r}")
    return reply


def _checked_admin(reply: Dict[str, Any], verb: str) -> Dict[str, Any]:
    if reply["type"] != f"admin.{verb}":
        raise BrokerError(PROTOCOL, f"expected an admin.{verb} reply, got {reply['type']!r}")
    return reply


def hello(socket_path: str, service: str, version: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT_SEC,
          max_retries: int = DEFAULT_MAX_RETRIES) -> Dict[str, Any]:
    """The broker's ``hello.ok`` reply for ``service`` (``endpoint``, ``version``, ``instance``, ``launched``)."""
    return _checked_hello(_call(socket_path, _hello_request(service, version), timeout, max_retries))


def admin(socket_path: str, verb: str, timeout: float = DEFAULT_TIMEOUT_SEC,
          max_retries: int = DEFAULT_MAX_RETRIES) -> Dict[str, Any]:
    """The broker's ``admin.<verb>`` reply (its answer is under ``body``)."""
    return _checked_admin(_call(socket_path, {"type": "admin", "verb": verb}, timeout, max_retries), verb)


class BrokerClient:
    """Calls to the broker on connections kept between calls: at most ``idle_connections`` stay open, each
    for at most ``idle_sec``. Thread-safe: concurrent calls use connections of their own. A kept connection
    that fails before any reply (the broker closed it meanwhile) is replaced once. ``close()`` (or leaving a
    ``with`` block) closes the kept connections."""

    def __init__(self, socket_path: str, timeout: float = DEFAULT_TIMEOUT_SEC, max_retries: int = DEFAULT_MAX_RETRIES,
                 idle_connections: int = DEFAULT_IDLE_CONNECTIONS, idle_sec: float = DEFAULT_IDLE_SEC) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.max_retries = max_retries
        self.idle_connections = idle_connections
        self.idle_sec = idle_sec
        self._idle: List[Tuple[socket.socket, float]] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> "BrokerClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def hello(self, service: str, version: Optional[str] = None) -> Dict[str, Any]:
        """As the function ``hello``, on a kept connection."""
        return _checked_hello(_call(self.socket_path, _hello_request(service, version), self.timeout, self.max_retries,
                                    self._exchange))

    def admin(self, verb: str) -> Dict[str, Any]:
        """As the function ``admin``, on a kept connection."""
        return _checked_admin(_call(self.socket_path, {"type": "admin", "verb": verb}, self.timeout, self.max_retries,
                                    self._exchange), verb)

    def close(self) -> None:
        """Closes the kept connections; later calls open and close a connection each."""
        with self._lock:
            self._closed = True
            kept, self._idle = self._idle, []
        for sock, _since in kept:
            sock.close()

    def _take(self) -> Optional[socket.socket]:
        """A kept connection younger than ``idle_sec``; older ones are closed."""
        now = time.monotonic()
        with self._lock:
            while self._idle:
                sock, since = self._idle.pop()
                if now - since < self.idle_sec:
                    return sock
                sock.close()
        return None

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.idle_connections:
                self._idle.append((sock, time.monotonic()))
                return
        sock.close()

    def _exchange(self, frame: bytes, timeout: float) -> Any:
        kept = self._take()
        if kept is not None:
            try:
                reply = _exchange_on(kept, frame, timeout)
            except BrokerError as error:
                kept.close()
                if error.code != CONNECTION:
                    raise
            else:
                self._keep(kept)
                return reply
        sock = _connect(self.socket_path, timeout)
        try:
            reply = _exchange_on(sock, frame, timeout)
        except BaseException:
            sock.close()
            raise
        self._keep(sock)
        return reply


def default_socket_path(environ: Optional[Dict[str, str]] = None) -> str:
    """``$CORRAL_DATA_DIR/run/broker.sock``, else under ``~/.local/state/corral``."""
    env = os.environ if environ is None else environ
    data_dir = env.get(DATA_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".local", "state", "corral")
    return os.path.join(data_dir, "run", "broker.sock")


def main(argv: Optional[List[str]] = None) -> int:
    """The CLI: prints the reply as JSON (exit 0) or the error as JSON on stderr (exit 1)."""
    parser = argparse.ArgumentParser(prog="corral_broker.py", description="Ask the Corral broker.")
    parser.add_argument("--socket", default=None, help="the broker socket (default: $CORRAL_DATA_DIR/run/broker.sock)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SEC, help="seconds per attempt")
    commands = parser.add_subparsers(dest="command", required=True)
    hello_parser = commands.add_parser("hello", help="ask for a backend of a service")
    hello_parser.add_argument("service")
    hello_parser.add_argument("--version", default=None)
    hello_parser.add_argument("--socket", dest="sub_socket", default=None)
    admin_parser = commands.add_parser("admin", help="ask an admin verb")
    admin_parser.add_argument("verb", choices=ADMIN_VERBS)
    admin_parser.add_argument("--socket", dest="sub_socket", default=None)
    args = parser.parse_args(argv)
    socket_path = args.sub_socket or args.socket or default_socket_path()
    try:
        if args.command == "hello":
            reply = hello(socket_path, args.service, args.version, timeout=args.timeout)
        else:
            reply = admin(socket_path, args.verb, timeout=args.timeout)
    except BrokerError as error:
        sys.stderr.write(json.dumps({"error": error.code, "message": error.message}) + "\n")
        return 1
    sys.stdout.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
