"""BoundedThreadingHTTPServer on real sockets: permits, the fast 503, timeouts, deadline, counters."""
from __future__ import annotations

import os
import socket
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler
from typing import List
from unittest import mock

try:
    from . import _support as support
except ImportError:  # run from inside modules/tests
    import _support as support  # type: ignore[no-redef]

import bounded_http
import keep_alive
from bounded_http import OVERLOAD_RESPONSE, BoundedThreadingHTTPServer


class ProbeHandler(BaseHTTPRequestHandler):
    """/block waits on the server's gate; /boom raises; anything else answers 200 "ok" (kept alive unless asked)."""

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
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


#: A request that asks the server to close the connection after answering (raw_exchange reads until then).
REQUEST = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


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

    def keep_alive(self, server: BoundedThreadingHTTPServer) -> "support.KeepAliveClient":
        client = support.KeepAliveClient(server.port)
        self.addCleanup(client.close)
        return client

    def hold_permits(self, server: BoundedThreadingHTTPServer, n: int) -> List[threading.Thread]:
        """Starts ``n`` /block requests and waits until their handlers run (each holds a permit)."""
        results: List[bytes] = []
        blockers = [threading.Thread(target=lambda: results.append(self.get(server, "/block"))) for _ in range(n)]
        for t in blockers:
            t.start()
        for _ in range(n):
            self.assertTrue(server.entered.acquire(timeout=support.TIMEOUT))  # type: ignore[attr-defined]
        self.assertEqual(server.active, n)
        self.blocked_results = results
        return blockers

    def test_over_capacity_gets_the_exact_503_and_the_handler_never_runs(self) -> None:
        server = self.start(max_connections=2)
        blockers = self.hold_permits(server, 2)
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
        self.assertTrue(support.wait_until(lambda: threading.active_count() == threads_before))  # no thread left behind
        counters = server.counters()
        self.assertEqual(counters["rejected_over_capacity"], 1)
        self.assertEqual(counters["accepted"], 2)
        self.assertEqual(counters["active"], 2)

        server.gate.set()  # type: ignore[attr-defined]
        for t in blockers:
            t.join(support.TIMEOUT)
        self.assertEqual(len(self.blocked_results), 2)
        self.assertTrue(all(r.startswith(b"HTTP/1.1 200") for r in self.blocked_results))
        self.assertTrue(support.wait_until(lambda: server.active == 0))
        # The permits are back.
        self.assertTrue(self.get(server, "/fast").startswith(b"HTTP/1.1 200"))
        self.assertEqual(server.counters()["rejected_over_capacity"], 1)

    def test_a_request_already_waiting_at_accept_is_refused_without_a_thread(self) -> None:
        server = self.start(max_connections=1)
        blockers = self.hold_permits(server, 1)
        server.shutdown()  # stop the accept loop: the next connection waits in the backlog with its request
        with socket.create_connection(("127.0.0.1", server.port), timeout=support.TIMEOUT) as sock:
            sock.sendall(REQUEST % b"/fast")
            time.sleep(0.05)  # loopback delivers at once; a margin so the accept surely sees the request
            threads_before = threading.active_count()
            server.handle_request()  # one accept, on this thread
            self.assertEqual(threading.active_count(), threads_before)  # no thread was started for it
            self.assertEqual(support.read_until_closed(sock), OVERLOAD_RESPONSE)
        server.gate.set()  # type: ignore[attr-defined]
        for t in blockers:
            t.join(support.TIMEOUT)

    def test_idle_keep_alive_connections_hold_no_permit(self) -> None:
        server = self.start(max_connections=1)
        clients = [self.keep_alive(server) for _ in range(4)]
        socks = []
        for client in clients:
            status, _, body = client.request("GET", "/fast")
            self.assertEqual((status, body), (200, "ok"))
            socks.append(client.sock)
        self.assertTrue(support.wait_until(lambda: server.idle == 4 and server.active == 0))
        # Four idle connections and one permit: a new connection's request is served, not refused.
        self.assertTrue(self.get(server, "/fast").startswith(b"HTTP/1.1 200"))
        # And so is the next request on every idle connection, on the same socket.
        for client, sock in zip(clients, socks):
            self.assertEqual(client.request("GET", "/fast")[0], 200)
            self.assertIs(client.sock, sock)
        counters = server.counters()
        self.assertEqual((counters["rejected_over_capacity"], counters["accepted"]), (0, 9))
        self.assertEqual(counters["connections_accepted"], 5)

    def test_an_answer_is_sent_only_after_its_permit_is_free(self) -> None:
        server = self.start(max_connections=1)
        first, second = self.keep_alive(server), self.keep_alive(server)
        # One request at a time, alternating connections: each is sent the moment the previous answer
        # is read, so it must never find that answer's permit still held.
        statuses = [(first if n % 2 == 0 else second).request("GET", "/fast")[0] for n in range(1000)]
        self.assertEqual(statuses.count(503), 0)
        self.assertEqual(server.counters()["rejected_over_capacity"], 0)

    def test_over_the_idle_bound_the_oldest_idle_connection_is_closed(self) -> None:
        # An idle timeout far past the waits below: on a loaded machine the default 5 s could close the
        # idle connections this test counts before it counts them.
        server = self.start(max_connections=4, max_idle_connections=2, idle_timeout=120)
        oldest = self.keep_alive(server)
        self.assertEqual(oldest.request("GET", "/fast")[0], 200)
        middle = self.keep_alive(server)
        self.assertEqual(middle.request("GET", "/fast")[0], 200)
        self.assertTrue(support.wait_until(lambda: server.idle == 2), server.counters())
        newest = self.keep_alive(server)  # a third idle connection (a fresh one is idle until it sends)
        self.assertTrue(oldest.closed_by_server())
        self.assertTrue(support.wait_until(lambda: server.idle == 2), server.counters())
        for client in (middle, newest):
            sock = client.sock
            self.assertEqual(client.request("GET", "/fast")[0], 200)
            self.assertIs(client.sock, sock)
        self.assertGreaterEqual(server.counters()["idle_closed_over_bound"], 1)

    def test_an_idle_connection_is_closed_after_the_idle_timeout_and_holds_no_permit(self) -> None:
        server = self.start(max_connections=1, idle_timeout=0.3)
        used = self.keep_alive(server)
        self.assertEqual(used.request("GET", "/fast")[0], 200)
        idle_since = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port)) as silent:
            self.assertTrue(support.wait_until(lambda: server.idle == 2))
            self.assertTrue(self.get(server, "/fast").startswith(b"HTTP/1.1 200"))  # the permit is free
            self.assertTrue(used.closed_by_server())
            self.assertGreaterEqual(time.monotonic() - idle_since, 0.25)  # not before its idle timeout
            silent.settimeout(support.TIMEOUT)
            self.assertEqual(silent.recv(100), b"")  # the server hung up on the silent one too
        self.assertEqual(server.counters()["idle_closed_timeout"], 2)
        self.assertEqual(server.idle, 0)

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

    def test_a_stalled_request_loses_its_permit_after_the_socket_timeout(self) -> None:
        server = self.start(max_connections=1, socket_timeout=0.2, request_deadline=None)
        with socket.create_connection(("127.0.0.1", server.port)) as stalled:
            sent_at = time.monotonic()
            stalled.sendall(b"GET /fast HTTP/1.1\r\n")  # the request starts, its head never ends
            self.assertTrue(support.wait_until(lambda: server.active == 1))
            self.assertTrue(support.wait_until(lambda: server.active == 0, timeout=3))
            self.assertGreaterEqual(time.monotonic() - sent_at, 0.15)  # not before the socket timeout
            stalled.settimeout(support.TIMEOUT)
            self.assertEqual(support.read_until_closed(stalled), b"")  # the server hung up
        self.assertTrue(self.get(server, "/fast").startswith(b"HTTP/1.1 200"))

    def test_a_trickling_client_is_cut_off_at_the_request_deadline(self) -> None:
        server = self.start(max_connections=1, socket_timeout=5, request_deadline=0.3)
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

    def test_drain_closes_idle_connections_and_answers_a_request_that_already_arrived(self) -> None:
        server = self.start(max_connections=4)
        idle, racing = self.keep_alive(server), self.keep_alive(server)
        for client in (idle, racing):
            self.assertEqual(client.request("GET", "/fast")[0], 200)
        self.assertTrue(support.wait_until(lambda: server.idle == 2))
        sock = racing.sock
        assert sock is not None
        sock.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")  # arrives as the server starts draining
        server.shutdown()
        self.assertTrue(server.drain(support.TIMEOUT))
        self.assertTrue(idle.closed_by_server())
        answer = support.read_until_closed(sock)
        self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer)  # answered, then closed
        self.assertEqual(server.idle, 0)

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

    def test_idle_bounds_come_from_the_environment(self) -> None:
        self.assertEqual(keep_alive.max_idle_from_env({}), 32)
        self.assertEqual(keep_alive.idle_timeout_from_env({}), 5.0)
        self.assertEqual(keep_alive.max_idle_from_env({"CORRAL_MODULE_MAX_IDLE_CONNECTIONS": "4"}), 4)
        self.assertEqual(keep_alive.idle_timeout_from_env({"CORRAL_MODULE_IDLE_TIMEOUT_SEC": "2.5"}), 2.5)
        for bad in ("0", "-1", "many"):
            with self.assertRaises(ValueError):
                keep_alive.max_idle_from_env({"CORRAL_MODULE_MAX_IDLE_CONNECTIONS": bad})
        for bad in ("0", "-2", "soon", "nan", "inf"):
            with self.assertRaises(ValueError):
                keep_alive.idle_timeout_from_env({"CORRAL_MODULE_IDLE_TIMEOUT_SEC": bad})
        with mock.patch.dict(os.environ, {"CORRAL_MODULE_MAX_IDLE_CONNECTIONS": "3", "CORRAL_MODULE_IDLE_TIMEOUT_SEC": "7"}):
            server = self.start()
        self.assertEqual((server.max_idle_connections, server.idle_timeout), (3, 7.0))
        self.assertEqual(server.keep_alive_header(), "timeout=7")


if __name__ == "__main__":
    unittest.main()
