"""Shared helpers for the module tests: import paths, HTTP on real sockets, module subprocesses."""
from __future__ import annotations

import http.client
import io
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

sys.dont_write_bytecode = True

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
MODULES_DIR = os.path.dirname(TESTS_DIR)
SDK_DIR = os.path.join(MODULES_DIR, "sdk")
DATOR_DIR = os.path.join(MODULES_DIR, "dator")
ARCA_DIR = os.path.join(MODULES_DIR, "arca")
FIXTURES_DIR = os.path.join(TESTS_DIR, "fixtures")

# The same import names the module scripts use (they put ../sdk on sys.path themselves).
for _path in (ARCA_DIR, DATOR_DIR, SDK_DIR):
    if _path not in sys.path:
        sys.path.insert(0, _path)

TIMEOUT = 5.0

#: The launch token the tests' modules are started with (the host makes a fresh one per launch).
TOKEN = secrets.token_hex(32)
#: The header line a raw request needs to pass the module's token check.
AUTH_LINE = b"Authorization: Bearer " + TOKEN.encode("ascii") + b"\r\n"

#: A module or socket path: an int is a port on 127.0.0.1, a str a Unix socket path.
Target = Union[int, str]


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a Unix socket (what the host does for ``http.transport: "unix"``)."""

    def __init__(self, path: str, timeout: float = TIMEOUT) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def quiet_log(*_args: Any, **_kwargs: Any) -> None:
    pass


def capture_logs(case: Any) -> "io.StringIO":
    """Sends the SDK's log lines to a buffer for the rest of the test."""
    import module_log
    from unittest import mock

    buffer = io.StringIO()
    patcher = mock.patch.object(module_log, "LOG_STREAM", buffer)
    patcher.start()
    case.addCleanup(patcher.stop)
    return buffer


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, interval: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def request(target: Target, method: str, path: str, body: Any = None, raw: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None, timeout: float = TIMEOUT,
            token: Optional[str] = TOKEN) -> Tuple[int, Dict[str, str], Any]:
    """One request on a fresh connection (with ``Bearer token`` unless None): (status, headers, JSON or text)."""
    conn = (UnixHTTPConnection(target, timeout=timeout) if isinstance(target, str)
            else http.client.HTTPConnection("127.0.0.1", target, timeout=timeout))
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode("utf-8"))
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        parsed: Any
        try:
            parsed = json.loads(payload.decode("utf-8")) if payload else None
        except ValueError:
            parsed = payload.decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed
    finally:
        conn.close()


class KeepAliveClient:
    """Requests on one kept-alive connection (``http.client``); ``sock`` changes if the server closed it."""

    def __init__(self, target: Target, timeout: float = TIMEOUT) -> None:
        self.conn = (UnixHTTPConnection(target, timeout=timeout) if isinstance(target, str)
                     else http.client.HTTPConnection("127.0.0.1", target, timeout=timeout))
        self.conn.connect()

    @property
    def sock(self) -> Optional[socket.socket]:
        """The connection's socket (None once the server said ``Connection: close``)."""
        return self.conn.sock

    def request(self, method: str, path: str, body: Any = None, token: Optional[str] = TOKEN,
                headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        hdrs.update(headers or {})
        self.conn.request(method, path, body=data, headers=hdrs)
        resp = self.conn.getresponse()
        payload = resp.read()
        try:
            parsed: Any = json.loads(payload.decode("utf-8")) if payload else None
        except ValueError:
            parsed = payload.decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed

    def closed_by_server(self, timeout: float = TIMEOUT) -> bool:
        """Waits up to ``timeout`` s for the server to close this (idle) connection."""
        sock = self.conn.sock
        if sock is None:
            return True
        sock.settimeout(timeout)
        try:
            return sock.recv(1) == b""
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self) -> None:
        self.conn.close()


def get(target: Target, path: str, token: Optional[str] = TOKEN) -> Tuple[int, Any]:
    status, _, body = request(target, "GET", path, token=token)
    return status, body


def post(target: Target, path: str, body: Any, token: Optional[str] = TOKEN,
         headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
    status, _, parsed = request(target, "POST", path, body=body, token=token, headers=headers)
    return status, parsed


def read_until_closed(sock: socket.socket, timeout: float = TIMEOUT) -> bytes:
    """Reads from ``sock`` until the peer closes it (a timeout raises)."""
    sock.settimeout(timeout)
    chunks: List[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def raw_exchange(port: int, data: bytes, timeout: float = TIMEOUT) -> bytes:
    """Sends ``data`` on a new socket and reads until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        if data:
            sock.sendall(data)
        return read_until_closed(sock, timeout)


def init_message(config: Any, component_id: str = "middleware.test", module_id: str = "test") -> Dict[str, Any]:
    return {
        "type": "middleware-init",
        "host_version": "0.1.0",
        "middleware_contract_version": "1",
        "host_api_version": "1",
        "component_id": component_id,
        "module_id": module_id,
        "config": config,
    }


_envelope_seq = [0]


def envelope(subject: str = "alice", payload: Any = None, **extra: Any) -> Dict[str, Any]:
    _envelope_seq[0] += 1
    env: Dict[str, Any] = {
        "id": f"env-{_envelope_seq[0]}",
        "hook": "ingress",
        "subject": subject,
        "payload": {"n": _envelope_seq[0]} if payload is None else payload,
    }
    env.update(extra)
    return env


def assert_valid_report(case: Any, report: Any, name: str) -> None:
    case.assertIsInstance(report, dict)
    case.assertEqual(
        set(report),
        {"name", "description", "capabilities", "middleware_contract_version", "host_api_version", "output_contracts"},
    )
    case.assertEqual(report["name"], name)
    case.assertIsInstance(report["description"], str)
    case.assertTrue(all(isinstance(c, str) for c in report["capabilities"]))
    case.assertTrue(all(isinstance(c, str) for c in report["output_contracts"]))
    case.assertEqual(report["middleware_contract_version"], "1")
    case.assertEqual(report["host_api_version"], "1")


def load_fragment(*parts: str) -> Dict[str, Any]:
    with open(os.path.join(MODULES_DIR, *parts), encoding="utf-8") as fh:
        return json.load(fh)


class ModuleProcess:
    """A module script run as the host runs it: clean env, CORRAL_MODULE_PORT, stderr captured."""

    def __init__(self, script: str, env: Optional[Dict[str, str]] = None, port: int = 0,
                 args: Optional[List[str]] = None, cwd: Optional[str] = None) -> None:
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CORRAL_MODULE_PORT": str(port),
                 "CORRAL_MODULE_TOKEN": TOKEN, "PYTHONDONTWRITEBYTECODE": "1"}
        clean.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, script] + list(args or []),
            env=clean,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: List[str] = []
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port: Optional[int] = None

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)
        self._queue.put(None)

    def wait_serving(self, timeout: float = TIMEOUT) -> Target:
        """Waits for the "serving" log line and returns the bound port (or the Unix socket path)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self._queue.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            record = json.loads(line)
            if record.get("msg") == "serving":
                if "socket" in record:
                    return str(record["socket"])
                self.port = int(record["port"])
                return self.port
        raise AssertionError(f"module did not start serving; stderr: {self.lines}")

    def records(self) -> List[Dict[str, Any]]:
        self._reader.join(timeout=TIMEOUT)
        return [json.loads(line) for line in self.lines]

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        if self.proc.stderr is not None:
            self._reader.join(timeout=TIMEOUT)
            self.proc.stderr.close()
