"""BoundedThreadingHTTPServer on real sockets: permits, the fast 503, timeouts, deadline, counters."""
from __future__ import annotations

import os
import socket
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler
from unittest import mock

try:
    from . import _support as support
except ImportError:  # run from inside modules/tests
    import _support as support  # type: ignore[no-redef]

import bounded_http
from bounded_http import OVERLOAD_RESPONSE, BoundedThreadingHTTPServer


class ProbeHandler(BaseHTTPRequestHandler):
    """/block waits on the server's gate; /boom raises; anything else answers 200 "ok"."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server = self.server
        with server.probe_lock:  # type: ignore[attr-defined]
            server.entries += 1  # type: ignore[attr-defined]
        server.entered.release()  # type: ignore[attr-defined]
        if self.path == "/block":
            server.gate.wait(support.TIMEOUT)  # type: ignore[attr-defined]
        if self.path == "/boom":
            raise RuntimeError("boom")
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *_args: object) -> None:
        pass


REQUEST = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class BoundedServerCase(unittest.TestCase):
    def start(self, **kwargs: object) -> BoundedThreadingHTTPServer:
        kwargs.setdefault("log", support.quiet_log)
        server = BoundedThreadingHTTPServer(("127.0.0.1", 0), ProbeHandler, **kwargs)  # type: ignore[arg-type]
        server.probe_lock = threading.Lock()  # type: ignore[attr-defined]
        server.entries = 0  # type: ignore[attr-defined]
        server.entered = threading.Semaphore(0)  # type: ignore[attr-defined]
        server.gate = threading.Event()  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()

        def stop() -> None:
            server.gate.set()  # type: ignore[attr-defined]
            server.shutdown()
            server.server_close()
            server.drain(support.TIMEOUT)
            thread.join(support.TIMEOUT)

        self.addCleanup(stop)
        return server

    def get(self, server: BoundedThreadingHTTPServer, path: str) -> bytes:
        return support.raw_exchange(server.port, REQUEST % path.encode())

    def test_over_capacity_gets_the_exact_503_and_no_handler_thread(self) -> None:
        server = self.start(max_connections=2)
        results: list = []
        blockers = [threading.Thread(target=lambda: results.append(self.get(server, "/block"))) for _ in range(2)]
        for t in blockers:
            t.start()
        for _ in range(2):
            self.assertTrue(server.entered.acquire(timeout=support.TIMEOUT))  # type: ignore[attr-defined]
        self.assertEqual(server.active, 2)
        threads_before = threading.active_count()

        started = time.monotonic()
        refused = self.get(server, "/fast")
        elapsed = time.monotonic() - started

        self.assertEqual(refused, OVERLOAD_RESPONSE)
        self.assertTrue(refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"))
        self.assertIn(b"\r\nRetry-After: 1\r\n", refused)
        self.assertIn(b"\r\nConnection: close\r\n", refused)
        head, body = refused.split(b"\r\n\r\n", 1)
        self.assertIn(b"Content-Length: %d\r\n" % len(body), head + b"\r\n")
        self.assertLess(elapsed, 1.0)
        self.assertEqual(server.entries, 2)  # type: ignore[attr-defined]  # the handler never ran for it
        self.assertEqual(threading.active_count(), threads_before)  # no thread was started for it
        counters = server.counters()
        self.assertEqual(counters["rejected_over_capacity"], 1)
        self.assertEqual(counters["accepted"], 2)
        self.assertEqual(counters["active"], 2)

        # A client that connects and sends nothing is refused the same way.
        self.assertEqual(support.raw_exchange(server.port, b""), OVERLOAD_RESPONSE)

        server.gate.set()  # type: ignore[attr-defined]
        for t in blockers:
            t.join(support.TIMEOUT)
        self.assertEqual(len(results), 2)
        self.assertTrue(all(r.startswith(b"HTTP/1.1 200") for r in results))
        self.assertTrue(support.wait_until(lambda: server.active == 0))
        # The permits are back.
        self.assertTrue(self.get(server, "/fast").startswith(b"HTTP/1.1 200"))
        self.assertEqual(server.counters()["rejected_over_capacity"], 2)

    def test_permit_is_released_when_the_handler_raises(self) -> None:
        server = self.start(max_connections=1)
        for _ in range(3):
            self.assertEqual(self.get(server, "/boom"), b"")  # closed without an answer
            self.assertTrue(support.wait_until(lambda: server.active == 0))
        self.assertTrue(self.get(server, "/fast").startswith(b"HTTP/1.1 200"))
        counters = server.counters()
        self.assertEqual(counters["handler_errors"], 3)
        self.assertEqual(counters["rejected_over_capacity"], 0)
        self.assertIn("boom", counters["last_handler_error"])

    def test_a_silent_client_loses_its_permit_after_the_socket_timeout(self) -> None:
        server = self.start(max_connections=1, socket_timeout=0.2, connection_deadline=None)
        with socket.create_connection(("127.0.0.1", server.port)) as idle:
            self.assertTrue(support.wait_until(lambda: server.active == 1))
            started = time.monotonic()
            self.assertTrue(support.wait_until(lambda: server.active == 0, timeout=3))
            self.assertGreaterEqual(time.monotonic() - started, 0.1)
            idle.settimeout(support.TIMEOUT)
            self.assertEqual(idle.recv(100), b"")  # the server hung up
        self.assertTrue(self.get(server, "/fast").startswith(b"HTTP/1.1 200"))

    def test_a_trickling_client_is_cut_off_at_the_connection_deadline(self) -> None:
        server = self.start(max_connections=1, socket_timeout=5, connection_deadline=0.3)
        stop = threading.Event()
        sock = socket.create_connection(("127.0.0.1", server.port))
        self.addCleanup(sock.close)

        def trickle() -> None:
            try:
                sock.sendall(b"GET /fast HTTP/1.1\r\n")
                while not stop.is_set():
                    sock.sendall(b"X-Slow: 1\r\n")
                    time.sleep(0.03)
            except OSError:
                pass

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        self.addCleanup(stop.set)
        self.assertTrue(support.wait_until(lambda: server.active == 1))
        self.assertTrue(support.wait_until(lambda: server.active == 0, timeout=3))
        self.assertEqual(server.counters()["deadline_closed"], 1)
        stop.set()
        sender.join(support.TIMEOUT)
        self.assertTrue(self.get(server, "/fast").startswith(b"HTTP/1.1 200"))

    def test_drain_waits_for_in_flight_handlers(self) -> None:
        server = self.start(max_connections=4)
        results: list = []
        client = threading.Thread(target=lambda: results.append(self.get(server, "/block")))
        client.start()
        self.assertTrue(server.entered.acquire(timeout=support.TIMEOUT))  # type: ignore[attr-defined]
        server.shutdown()
        self.assertFalse(server.drain(0.05))  # still in flight
        threading.Timer(0.1, server.gate.set).start()  # type: ignore[attr-defined]
        self.assertTrue(server.drain(support.TIMEOUT))
        client.join(support.TIMEOUT)
        self.assertTrue(results and results[0].startswith(b"HTTP/1.1 200"))

    def test_max_connections_comes_from_the_environment(self) -> None:
        self.assertEqual(bounded_http.max_connections_from_env({}), 32)
        self.assertEqual(bounded_http.max_connections_from_env({"CORRAL_MODULE_MAX_CONNECTIONS": "7"}), 7)
        for bad in ("0", "-1", "many"):
            with self.assertRaises(ValueError):
                bounded_http.max_connections_from_env({"CORRAL_MODULE_MAX_CONNECTIONS": bad})
        with mock.patch.dict(os.environ, {"CORRAL_MODULE_MAX_CONNECTIONS": "3"}):
            server = self.start()
        self.assertEqual(server.max_connections, 3)
        self.assertEqual(self.start(max_connections=5).max_connections, 5)
        self.assertTrue(BoundedThreadingHTTPServer.daemon_threads)
        self.assertTrue(BoundedThreadingHTTPServer.allow_reuse_address)


if __name__ == "__main__":
    unittest.main()
