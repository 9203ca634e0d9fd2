"""corral_broker against a fake broker on a Unix socket: framing, retries, refusals, timeouts, the CLI."""
from __future__ import annotations

import json
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import Any, Callable, Dict, List

try:
    from . import _support as support
except ImportError:  # run from inside modules/tests
    import _support as support  # type: ignore[no-redef]

import corral_broker
from corral_broker import BrokerError

# What the fake broker does with the n-th request (0-based): write to the socket, or nothing.
Script = Callable[[Dict[str, Any], int, socket.socket], None]

GOLDEN_HELLO_REDIS = bytes.fromhex(
    "0000002f"
    "7b2274797065223a2268656c6c6f222c2273657276696365223a227265646973222c2270726f746f636f6c223a317d"
)


def frame(value: Any) -> bytes:
    body = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return struct.pack(">I", len(body)) + body


def hello_ok(request: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "type": "hello.ok",
        "request_id": request.get("request_id"),
        "service": request.get("service"),
        "version": "7.2",
        "endpoint": {"kind": "unix", "path": "/tmp/redis.sock"},
        "instance": "redis-7.2-1",
        "launched": True,
    }


class FakeBroker:
    """Reads request frames on a Unix socket in a temp dir and answers as ``script`` says."""

    def __init__(self, script: Script) -> None:
        self.dir = tempfile.mkdtemp(prefix="corral-broker-py-")
        self.socket_path = os.path.join(self.dir, "broker.sock")
        self.requests: List[Dict[str, Any]] = []
        self.raw_requests: List[bytes] = []
        self.connections = 0
        self.lock = threading.Lock()
        broker = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(support.TIMEOUT)
                with broker.lock:
                    broker.connections += 1
                try:
                    while True:
                        header = self._read(sock, 4)
                        if header is None:
                            return
                        body = self._read(sock, struct.unpack(">I", header)[0])
                        if body is None:
                            return
                        request = json.loads(body.decode("utf-8"))
                        with broker.lock:
                            broker.raw_requests.append(header + body)
                            broker.requests.append(request)
                            n = len(broker.requests) - 1
                        script(request, n, sock)
                except OSError:
                    return

            @staticmethod
            def _read(sock: socket.socket, count: int) -> Any:
                data = b""
                while len(data) < count:
                    chunk = sock.recv(count - len(data))
                    if not chunk:
                        return None
                    data += chunk
                return data

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

        self.server = Server(self.socket_path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(support.TIMEOUT)
        shutil.rmtree(self.dir, ignore_errors=True)


def reply_with(make: Callable[[Dict[str, Any], int], Any]) -> Script:
    def script(request: Dict[str, Any], n: int, sock: socket.socket) -> None:
        sock.sendall(frame(make(request, n)))

    return script


class BrokerClientCase(unittest.TestCase):
    def start(self, script: Script) -> FakeBroker:
        broker = FakeBroker(script)
        self.addCleanup(broker.stop)
        return broker

    def test_encode_frame_writes_the_golden_bytes(self) -> None:
        self.assertEqual(
            corral_broker.encode_frame({"type": "hello", "service": "redis", "protocol": 1}), GOLDEN_HELLO_REDIS
        )
        self.assertEqual(corral_broker.encode_frame("é😀"), bytes.fromhex("00000008 22 c3a9 f09f9880 22".replace(" ", "")))
        with self.assertRaises(BrokerError) as raised:
            corral_broker.encode_frame("x" * corral_broker.MAX_FRAME_BYTES)
        self.assertEqual(raised.exception.code, "protocol")

    def test_hello_round_trip_sends_one_frame_and_echoes_the_request_id(self) -> None:
        broker = self.start(reply_with(lambda request, _n: hello_ok(request)))
        reply = corral_broker.hello(broker.socket_path, "redis", version="7.2")
        self.assertEqual(reply["endpoint"], {"kind": "unix", "path": "/tmp/redis.sock"})
        self.assertEqual(reply["launched"], True)
        [request] = broker.requests
        self.assertEqual(set(request), {"type", "service", "version", "request_id", "protocol"})
        self.assertEqual(request["protocol"], 1)
        self.assertEqual(reply["request_id"], request["request_id"])
        raw = broker.raw_requests[0]
        self.assertEqual(struct.unpack(">I", raw[:4])[0], len(raw) - 4)

    def test_a_client_sends_several_hellos_on_one_kept_connection(self) -> None:
        broker = self.start(reply_with(lambda request, _n: hello_ok(request)))
        with corral_broker.BrokerClient(broker.socket_path) as client:
            for _ in range(5):
                self.assertEqual(client.hello("redis")["type"], "hello.ok")
        self.assertEqual(len(broker.requests), 5)
        self.assertEqual(broker.connections, 1)

    def test_a_client_keeps_at_most_idle_connections_and_replaces_one_the_broker_closed(self) -> None:
        def close_first(request: Dict[str, Any], n: int, sock: socket.socket) -> None:
            sock.sendall(frame(hello_ok(request)))
            if n == 0:
                sock.shutdown(socket.SHUT_RDWR)
        broker = self.start(close_first)
        client = corral_broker.BrokerClient(broker.socket_path, idle_connections=1)
        self.addCleanup(client.close)
        client.hello("redis")
        time.sleep(0.05)
        # The kept connection was closed by the broker: the call goes through on a fresh one.
        self.assertEqual(client.hello("redis")["type"], "hello.ok")
        self.assertEqual(broker.connections, 2)
        threads = [threading.Thread(target=client.hello, args=("redis",)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(support.TIMEOUT)
        self.assertEqual(len(client._idle), 1)

    def test_admin_round_trip(self) -> None:
        broker = self.start(reply_with(lambda request, _n: {
            "type": "admin." + request["verb"], "request_id": request["request_id"], "body": {"ok": True}}))
        reply = corral_broker.admin(broker.socket_path, "status")
        self.assertEqual(reply["body"], {"ok": True})
        self.assertEqual(broker.requests[0]["type"], "admin")

    def test_reads_a_reply_that_arrives_byte_by_byte(self) -> None:
        def script(request: Dict[str, Any], _n: int, sock: socket.socket) -> None:
            for byte in frame(hello_ok(request)):
                sock.sendall(bytes([byte]))
                time.sleep(0.001)

        broker = self.start(script)
        self.assertEqual(corral_broker.hello(broker.socket_path, "redis")["instance"], "redis-7.2-1")

    def test_refuses_an_oversize_reply_from_its_header_without_waiting_for_the_body(self) -> None:
        broker = self.start(lambda _request, _n, sock: sock.sendall(b"\x00\x01\x00\x01{"))
        started = time.monotonic()
        with self.assertRaises(BrokerError) as raised:
            corral_broker.hello(broker.socket_path, "redis", timeout=3)
        self.assertEqual(raised.exception.code, "protocol")
        self.assertIn("65537", raised.exception.message)
        self.assertLess(time.monotonic() - started, 1.0)

    def test_refuses_a_zero_length_reply(self) -> None:
        broker = self.start(lambda _request, _n, sock: sock.sendall(b"\x00\x00\x00\x00"))
        with self.assertRaises(BrokerError) as raised:
            corral_broker.hello(broker.socket_path, "redis")
        self.assertEqual(raised.exception.code, "protocol")

    def test_retries_after_retry_after_ms_with_the_same_request_id(self) -> None:
        broker = self.start(reply_with(lambda request, n: {
            "type": "error", "request_id": request["request_id"], "code": "overloaded", "message": "busy",
            "retry_after_ms": 50} if n == 0 else hello_ok(request)))
        started = time.monotonic()
        reply = corral_broker.hello(broker.socket_path, "redis")
        self.assertEqual(reply["type"], "hello.ok")
        self.assertGreaterEqual(time.monotonic() - started, 0.045)
        self.assertEqual(len(broker.requests), 2)
        self.assertEqual(broker.requests[0]["request_id"], broker.requests[1]["request_id"])

    def test_gives_up_after_max_retries_with_the_last_refusal(self) -> None:
        broker = self.start(reply_with(lambda request, _n: {
            "type": "error", "request_id": request["request_id"], "code": "rate_limited", "message": "slow down",
            "retry_after_ms": 5}))
        with self.assertRaises(BrokerError) as raised:
            corral_broker.hello(broker.socket_path, "redis", max_retries=2)
        self.assertEqual((raised.exception.code, raised.exception.retry_after_ms), ("rate_limited", 5))
        self.assertEqual(len(broker.requests), 3)

    def test_raises_the_refusal_code_and_message_without_retrying(self) -> None:
        broker = self.start(reply_with(lambda request, _n: {
            "type": "error", "request_id": request["request_id"], "code": "unknown_service", "message": "no service nope"}))
        with self.assertRaises(BrokerError) as raised:
            corral_broker.hello(broker.socket_path, "nope")
        self.assertEqual((raised.exception.code, raised.exception.message), ("unknown_service", "no service nope"))
        self.assertEqual(len(broker.requests), 1)

    def test_a_silent_broker_is_a_timeout(self) -> None:
        broker = self.start(lambda _request, _n, _sock: None)
        started = time.monotonic()
        with self.assertRaises(BrokerError) as raised:
            corral_broker.hello(broker.socket_path, "redis", timeout=0.2)
        self.assertEqual(raised.exception.code, "timeout")
        self.assertLess(time.monotonic() - started, 2.0)

    def test_a_closed_connection_or_a_missing_socket_is_a_connection_error(self) -> None:
        broker = self.start(lambda _request, _n, sock: sock.shutdown(socket.SHUT_RDWR))
        with self.assertRaises(BrokerError) as closed:
            corral_broker.hello(broker.socket_path, "redis")
        self.assertEqual(closed.exception.code, "connection")
        with self.assertRaises(BrokerError) as missing:
            corral_broker.admin(os.path.join(broker.dir, "absent.sock"), "status")
        self.assertEqual(missing.exception.code, "connection")

    def test_a_reply_for_another_request_id_is_a_protocol_error(self) -> None:
        broker = self.start(reply_with(lambda request, _n: {**hello_ok(request), "request_id": "other"}))
        with self.assertRaises(BrokerError) as raised:
            corral_broker.hello(broker.socket_path, "redis")
        self.assertEqual(raised.exception.code, "protocol")

    def test_cli_prints_the_hello_reply_as_json(self) -> None:
        broker = self.start(reply_with(lambda request, _n: hello_ok(request)))
        script = os.path.join(support.SDK_DIR, "corral_broker.py")
        done = subprocess.run([sys.executable, script, "hello", "redis", "--socket", broker.socket_path],
                              capture_output=True, text=True, timeout=support.TIMEOUT)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["instance"], "redis-7.2-1")

    def test_cli_prints_a_refusal_on_stderr_and_exits_1(self) -> None:
        broker = self.start(reply_with(lambda request, _n: {
            "type": "error", "request_id": request["request_id"], "code": "unknown_service", "message": "no service nope"}))
        script = os.path.join(support.SDK_DIR, "corral_broker.py")
        done = subprocess.run([sys.executable, script, "hello", "nope", "--socket", broker.socket_path],
                              capture_output=True, text=True, timeout=support.TIMEOUT)
        self.assertEqual(done.returncode, 1)
        self.assertEqual(json.loads(done.stderr), {"error": "unknown_service", "message": "no service nope"})


if __name__ == "__main__":
    unittest.main()
