"""The module SDK on real sockets: protocol routes, bounds, errors, and SIGTERM as a subprocess."""
from __future__ import annotations

import json
import os
import tempfile
import threading
import unittest
from typing import Any, Dict, List

try:
    from . import _support as support
except ImportError:  # run from inside modules/tests
    import _support as support  # type: ignore[no-redef]

import corral_module
from corral_module import HttpError, Module, ModuleConfigError, ModuleServer

ECHO = os.path.join(support.FIXTURES_DIR, "echo_module.py")


class Behaviour:
    """A module whose invoke does what the test sets in ``mode``."""

    def __init__(self) -> None:
        self.mode = "allow"
        self.inits: List[Any] = []

    def invoke(self, envelope: Dict[str, Any]) -> Any:
        if self.mode == "raise":
            raise KeyError("exploded")
        if self.mode == "deny-without-reason":
            return {"decision": "deny"}
        if self.mode == "garbage":
            return {"decision": "perhaps"}
        if self.mode == "not-json":
            return {"decision": "allow", "annotations": {"x": {1, 2}}}
        if self.mode == "http-error":
            raise HttpError(429, "slow_down", "too fast")
        if self.mode == "modify":
            return {"decision": "modify", "payload": {"wrapped": envelope["payload"]}}
        return {"decision": "allow", "annotations": {"seen": envelope["id"]}}

    def on_init(self, config: Any, init: Dict[str, Any]) -> None:
        if isinstance(config, dict) and config.get("bad"):
            raise ModuleConfigError("bad is not allowed")
        self.inits.append((config, init))

    def route(self, request: corral_module.RouteRequest) -> Any:
        if request.param("fail"):
            raise ValueError("route failed")
        return 201, {"path": request.path, "q": request.param("q"), "all": request.query.get("q")}


class SdkCase(unittest.TestCase):
    def setUp(self) -> None:
        self.behaviour = Behaviour()
        self.module = Module("probe", "A probe module.", ["probe.cap"], ["annotation:seen"], self.behaviour.invoke,
                             extra_routes={"/v1/probe": self.behaviour.route}, on_init=self.behaviour.on_init)
        self.server = ModuleServer(self.module, token=support.TOKEN, log=support.quiet_log, poll_interval=0.02).start()
        self.addCleanup(self.server.stop, 1.0)
        self.port = self.server.port
        self.stderr = support.capture_logs(self)

    def init(self, config: Any = None) -> Any:
        status, report = support.post(self.port, corral_module.INIT_PATH, support.init_message(config or {}))
        self.assertEqual(status, 200, report)
        return report

    def invoke(self, body: Any) -> Any:
        return support.post(self.port, corral_module.INVOKE_PATH, body)

    def log_records(self) -> List[Dict[str, Any]]:
        lines = [line for line in self.stderr.getvalue().split("\n") if line]
        return [json.loads(line) for line in lines]  # every log line is one JSON object

    # -- readiness, health, init ---------------------------------------------------------------------

    def test_ready_before_init_and_health_reports_counters(self) -> None:
        self.assertEqual(support.get(self.port, "/readyz"), (200, {"status": "ready", "initialised": False}))
        status, health = support.get(self.port, "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(health["status"], "ok")
        for key in ("accepted", "rejected_over_capacity", "handler_errors", "active", "max_connections"):
            self.assertIn(key, health)
        self.assertEqual(health["max_connections"], 32)
        self.assertFalse(health["initialised"])

    def test_init_returns_the_module_report_and_passes_the_config_subtree(self) -> None:
        report = self.init({"k": 1})
        support.assert_valid_report(self, report, "probe")
        self.assertEqual(report["capabilities"], ["probe.cap"])
        self.assertEqual(report["output_contracts"], ["annotation:seen"])
        config, init = self.behaviour.inits[0]
        self.assertEqual(config, {"k": 1})
        self.assertEqual(init["component_id"], "middleware.test")
        self.assertEqual(support.get(self.port, "/readyz")[1]["initialised"], True)
        # A missing config (no modules.<id> subtree) reaches on_init as {}.
        body = support.init_message(None)
        del body["config"]
        self.assertEqual(support.post(self.port, corral_module.INIT_PATH, body)[0], 200)
        self.assertEqual(self.behaviour.inits[-1][0], {})

    def test_init_rejects_a_bad_message_or_a_bad_config(self) -> None:
        status, body = support.post(self.port, corral_module.INIT_PATH, {"type": "hello"})
        self.assertEqual((status, body["error"]), (400, "bad_init"))
        status, body = support.post(self.port, corral_module.INIT_PATH, support.init_message({"bad": True}))
        self.assertEqual((status, body["error"]), (400, "bad_config"))
        self.assertIn("bad is not allowed", body["message"])
        self.assertFalse(self.module.initialised)

    # -- invoke ------------------------------------------------------------------------------------------

    def test_invoke_before_init_is_refused(self) -> None:
        status, body = self.invoke(support.envelope())
        self.assertEqual((status, body["error"]), (409, "not_initialised"))

    def test_invoke_answers_the_decision(self) -> None:
        self.init()
        env = support.envelope(metadata={"trace": "t"}, deadline_ms=1000)
        self.assertEqual(self.invoke(env), (200, {"decision": "allow", "annotations": {"seen": env["id"]}}))
        self.assertEqual(self.invoke({**support.envelope(), "payload": None})[0], 200)  # present, null
        self.behaviour.mode = "modify"
        self.assertEqual(self.invoke(support.envelope(payload=[1]))[1], {"decision": "modify", "payload": {"wrapped": [1]}})

    def test_malformed_envelopes_are_400(self) -> None:
        self.init()
        good = support.envelope()
        cases = [
            [good],
            "text",
            {**good, "id": ""},
            {k: v for k, v in good.items() if k != "id"},
            {**good, "hook": 3},
            {**good, "subject": None},
            {k: v for k, v in good.items() if k != "subject"},
            {k: v for k, v in good.items() if k != "payload"},
            {**good, "metadata": None},
            {**good, "metadata": ["a"]},
            {**good, "deadline_ms": 0},
            {**good, "deadline_ms": 1.5},
            {**good, "deadline_ms": "100"},
            {**good, "deadline_ms": True},
        ]
        for case in cases:
            with self.subTest(case=case):
                status, body = self.invoke(case)
                self.assertEqual((status, body["error"]), (400, "bad_envelope"))
        for raw in (b"{not json", b"\xff\xfe", b"NaN", b""):
            with self.subTest(raw=raw):
                status, _, body = support.request(self.port, "POST", corral_module.INVOKE_PATH, raw=raw)
                self.assertEqual((status, body["error"]), (400, "bad_json"))

    def test_an_exception_in_invoke_is_a_logged_500_and_the_server_keeps_serving(self) -> None:
        self.init()
        self.behaviour.mode = "raise"
        status, body = self.invoke(support.envelope())
        self.assertEqual((status, body["error"]), (500, "module_error"))
        self.assertIn("KeyError", body["message"])
        records = [r for r in self.log_records() if r["msg"] == "invoke raised"]
        self.assertEqual(len(records), 1)
        self.assertEqual(records[0]["level"], "error")
        self.assertIn("Traceback", records[0]["traceback"])
        self.assertIn("exploded", records[0]["traceback"])
        self.behaviour.mode = "allow"
        self.assertEqual(self.invoke(support.envelope())[0], 200)
        self.assertEqual(support.get(self.port, "/healthz")[1]["handler_errors"], 1)

    def test_an_invalid_decision_is_a_500(self) -> None:
        self.init()
        for mode in ("deny-without-reason", "garbage", "not-json"):
            with self.subTest(mode=mode):
                self.behaviour.mode = mode
                status, body = self.invoke(support.envelope())
                self.assertEqual((status, body["error"]), (500, "invalid_decision"))
        self.behaviour.mode = "http-error"
        status, body = self.invoke(support.envelope())
        self.assertEqual((status, body), (429, {"error": "slow_down", "message": "too fast"}))

    # -- bounds and routing ------------------------------------------------------------------------------

    def test_post_bodies_need_a_bounded_content_length(self) -> None:
        self.init()
        path = corral_module.INVOKE_PATH.encode()
        head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + support.AUTH_LINE
        no_length = support.raw_exchange(self.port, head + b"\r\n")
        self.assertTrue(no_length.startswith(b"HTTP/1.1 411"), no_length)
        chunked = support.raw_exchange(self.port, head + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertTrue(chunked.startswith(b"HTTP/1.1 411"), chunked)
        too_big = support.raw_exchange(self.port, head + b"Content-Length: %d\r\n\r\n" % (2 * 1024 * 1024))
        self.assertTrue(too_big.startswith(b"HTTP/1.1 413"), too_big)
        self.assertIn(b'"error":"payload_too_large"', too_big)
        self.assertIn(b"Content-Type: application/json", too_big)

    def test_unknown_routes_and_methods(self) -> None:
        self.assertEqual(support.get(self.port, "/nope")[0], 404)
        self.assertEqual(support.get(self.port, corral_module.INVOKE_PATH)[0], 405)
        self.assertEqual(support.post(self.port, "/readyz", {})[0], 405)
        self.assertEqual(support.request(self.port, "DELETE", "/v1/probe")[0], 405)

    def test_extra_routes_get_the_query_and_may_set_a_status(self) -> None:
        status, body = support.get(self.port, "/v1/probe?q=a&q=b")
        self.assertEqual((status, body), (201, {"path": "/v1/probe", "q": "b", "all": ["a", "b"]}))
        status, body = support.get(self.port, "/v1/probe?fail=1")
        self.assertEqual((status, body["error"]), (500, "module_error"))
        self.assertEqual(support.get(self.port, "/healthz")[0], 200)

    def test_connections_are_kept_alive_and_every_request_on_them_needs_the_token(self) -> None:
        client = support.KeepAliveClient(self.port)
        self.addCleanup(client.close)
        status, headers, _ = client.request("GET", "/readyz")
        sock = client.sock
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["keep-alive"], "timeout=5")
        self.assertNotIn("connection", headers)
        init = support.init_message({})
        self.assertEqual(client.request("POST", corral_module.INIT_PATH, init)[0], 200)
        # The last character changed, whatever it was (a random token ends in "0" one time in 16).
        for token in (None, "x" * 64, support.TOKEN[:-1] + ("0" if support.TOKEN[-1] != "0" else "1")):
            status, _, body = client.request("POST", corral_module.INVOKE_PATH, support.envelope(), token=token)
            self.assertEqual((status, body["error"]), (401, "unauthorized"))
        status, _, body = client.request("POST", corral_module.INVOKE_PATH, support.envelope())
        self.assertEqual((status, body["decision"]), (200, "allow"))
        self.assertIs(client.sock, sock)  # all of it on one connection
        self.assertEqual(self.server.server.counters()["connections_accepted"], 1)

    def test_a_body_no_route_read_is_dropped_or_the_connection_closes(self) -> None:
        client = support.KeepAliveClient(self.port)
        self.addCleanup(client.close)
        status, headers, _ = client.request("POST", "/nope", {"small": True})
        self.assertEqual(status, 404)
        sock = client.sock
        self.assertIsNotNone(sock)  # a small unread body is read and dropped: the connection stays
        self.assertEqual(client.request("GET", "/readyz")[0], 200)
        self.assertIs(client.sock, sock)
        big = {"pad": "x" * (100 * 1024)}
        status, headers, _ = client.request("POST", corral_module.INVOKE_PATH, big, token=None)
        self.assertEqual((status, headers.get("connection")), (401, "close"))  # too big to drop: closed
        self.assertIsNone(client.sock)

    def test_extra_routes_cannot_shadow_protocol_routes(self) -> None:
        with self.assertRaises(ValueError):
            Module("x", "", [], [], self.behaviour.invoke, extra_routes={"/healthz": self.behaviour.route})


class ContractHelpersCase(unittest.TestCase):
    def test_resolve_port(self) -> None:
        self.assertEqual(corral_module.resolve_port([], {"CORRAL_MODULE_PORT": "4100"}), 4100)
        self.assertEqual(corral_module.resolve_port(["--port", "4200"], {"CORRAL_MODULE_PORT": "4100"}), 4200)
        self.assertEqual(corral_module.resolve_port(["--port=0"], {}), 0)
        for argv, env in (([], {}), (["--port", "x"], {}), ([], {"CORRAL_MODULE_PORT": "70000"})):
            with self.assertRaises(ValueError):
                corral_module.resolve_port(argv, env)

    def test_validate_decision(self) -> None:
        ok = [{"decision": "allow"}, {"decision": "deny", "reason": "r"}, {"decision": "modify", "payload": None},
              {"decision": "allow", "reason": "r", "annotations": {"a": 1}}]
        for decision in ok:
            corral_module.validate_decision(decision)
        bad = [None, [], {"decision": "deny"}, {"decision": "modify"}, {"decision": "allow", "annotations": []},
               {"decision": "allow", "reason": 1}, {"decision": "ALLOW"}]
        for decision in bad:
            with self.subTest(decision=decision), self.assertRaises(corral_module.DecisionError):
                corral_module.validate_decision(decision)

    def test_data_dir(self) -> None:
        self.assertEqual(corral_module.data_dir({"CORRAL_DATA_DIR": "/d"}), "/d")
        self.assertEqual(corral_module.data_dir({"HOME": "/h"}), "/h/.local/state/corral")
        with self.assertRaises(ModuleConfigError):
            corral_module.data_dir({})


class SubprocessCase(unittest.TestCase):
    def spawn(self, script: str, env: Dict[str, str]) -> support.ModuleProcess:
        proc = support.ModuleProcess(script, env=env)
        self.addCleanup(proc.kill)
        return proc

    def test_sigterm_lets_in_flight_requests_finish_then_exits_0(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            marker = os.path.join(tmp, "shutdown")
            proc = self.spawn(ECHO, {"CORRAL_MODULE_ID": "echo-1", "ECHO_SHUTDOWN_MARKER": marker,
                                     "ECHO_SLOW_SEC": "0.4"})
            port = proc.wait_serving()
            self.assertEqual(support.get(port, "/readyz")[0], 200)
            results: List[Any] = []
            client = threading.Thread(target=lambda: results.append(support.get(port, "/slow")))
            client.start()
            # /healthz itself is one active request; two means /slow is in flight.
            self.assertTrue(support.wait_until(lambda: support.get(port, "/healthz")[1]["active"] >= 2))
            proc.terminate()
            self.assertEqual(proc.wait(), 0)
            client.join(support.TIMEOUT)
            self.assertEqual(results, [(200, {"slow": "done"})])
            with open(marker, encoding="utf-8") as fh:
                self.assertEqual(fh.read(), "closed\n")
            records = proc.records()
            self.assertTrue(all(r["module"] == "echo-1" for r in records))
            self.assertEqual([r["msg"] for r in records][-2:], ["stopping", "stopped"])
            with self.assertRaises(OSError):
                support.get(port, "/readyz")

    def test_without_a_port_the_module_exits_1_with_a_log_line(self) -> None:
        proc = support.ModuleProcess(ECHO, env={"CORRAL_MODULE_PORT": ""})
        self.addCleanup(proc.kill)
        self.assertEqual(proc.wait(), 1)
        records = proc.records()
        self.assertEqual(records[-1]["msg"], "module could not start")
        self.assertIn("CORRAL_MODULE_PORT", records[-1]["error"])


if __name__ == "__main__":
    unittest.main()
