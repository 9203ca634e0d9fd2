"""The SDK's trust boundary on real sockets: the launch token, the Unix-socket transport, deadlines, deep JSON."""
from __future__ import annotations

import os
import socket
import stat
import tempfile
import time
import unittest
from typing import Any, Dict, List
from unittest import mock

try:
    from . import _support as support
except ImportError:  # run from inside modules/tests
    import _support as support  # type: ignore[no-redef]

import corral_module
import json_limits
import module_auth
from corral_module import INIT_PATH, INVOKE_PATH, Module, ModuleServer

ECHO = os.path.join(support.FIXTURES_DIR, "echo_module.py")


class Recorder:
    """A module that records its invocations and can sleep in them."""

    def __init__(self) -> None:
        self.invoked: List[str] = []
        self.sleep_sec = 0.0

    def invoke(self, envelope: Dict[str, Any]) -> Dict[str, Any]:
        time.sleep(self.sleep_sec)
        self.invoked.append(envelope["id"])
        return {"decision": "allow"}


class TokenCase(unittest.TestCase):
    def setUp(self) -> None:
        support.capture_logs(self)
        self.recorder = Recorder()
        module = Module("guarded", "A guarded module.", [], [], self.recorder.invoke,
                        extra_routes={"/v1/secret": lambda _request: {"secret": "archive"}})
        self.server = ModuleServer(module, token=support.TOKEN, log=support.quiet_log, poll_interval=0.02).start()
        self.addCleanup(self.server.stop, 1.0)
        self.port = self.server.port

    def test_every_route_but_ready_and_health_answers_401_without_the_token(self) -> None:
        for token in (None, "x" * 64, support.TOKEN[:-1] + ("0" if support.TOKEN[-1] != "0" else "1"), ""):
            for method, path, body in (("POST", INIT_PATH, support.init_message({})),
                                       ("POST", INVOKE_PATH, support.envelope()),
                                       ("GET", "/v1/secret", None), ("GET", "/nope", None)):
                status, headers, answer = support.request(self.port, method, path, body=body, token=token)
                self.assertEqual(status, 401, (token, path, answer))
                self.assertEqual(answer["error"], "unauthorized")
                self.assertEqual(headers["www-authenticate"], "Bearer")
        self.assertFalse(self.server.module.initialised)
        self.assertEqual(self.recorder.invoked, [])
        self.assertEqual(support.get(self.port, "/readyz", token=None)[0], 200)
        self.assertEqual(support.get(self.port, "/healthz", token=None)[0], 200)

    def test_the_right_token_passes_and_is_compared_in_constant_time(self) -> None:
        with mock.patch.object(module_auth.hmac, "compare_digest", wraps=module_auth.hmac.compare_digest) as compare:
            self.assertEqual(support.get(self.port, "/v1/secret"), (200, {"secret": "archive"}))
        compare.assert_called_once()
        self.assertEqual(support.post(self.port, INIT_PATH, support.init_message({}))[0], 200)
        self.assertEqual(support.post(self.port, INVOKE_PATH, support.envelope())[0], 200)

    def test_a_server_needs_a_real_token(self) -> None:
        module = Module("m", "d", [], [], self.recorder.invoke)
        for token in ("", "short"):
            with self.assertRaises(ValueError):
                ModuleServer(module, token=token, log=support.quiet_log)

    def test_token_from_env(self) -> None:
        self.assertEqual(module_auth.token_from_env({"CORRAL_MODULE_TOKEN": support.TOKEN}), support.TOKEN)
        with self.assertRaisesRegex(ValueError, "CORRAL_MODULE_TOKEN is not set"):
            module_auth.token_from_env({})
        with self.assertRaisesRegex(ValueError, "at least 32"):
            module_auth.token_from_env({"CORRAL_MODULE_TOKEN": "abc"})
        self.assertFalse(module_auth.bearer_matches("Basic " + support.TOKEN, support.TOKEN))
        self.assertFalse(module_auth.bearer_matches("Bearer " + support.TOKEN + "é", support.TOKEN))
        self.assertTrue(module_auth.bearer_matches("bearer  " + support.TOKEN, support.TOKEN))


class DeadlineCase(unittest.TestCase):
    def setUp(self) -> None:
        self.logs = support.capture_logs(self)
        self.recorder = Recorder()
        module = Module("timed", "A timed module.", [], [], self.recorder.invoke)
        self.server = ModuleServer(module, token=support.TOKEN, log=support.quiet_log, poll_interval=0.02).start()
        self.addCleanup(self.server.stop, 1.0)
        self.port = self.server.port
        self.assertEqual(support.post(self.port, INIT_PATH, support.init_message({}))[0], 200)

    def invoke(self, envelope: Dict[str, Any], deadline: str) -> Any:
        return support.post(self.port, INVOKE_PATH, envelope, headers={corral_module.DEADLINE_HEADER: deadline})

    def test_an_invocation_past_its_deadline_is_504_and_never_runs(self) -> None:
        past = str(int(time.time() * 1000) - 1)
        status, body = self.invoke(support.envelope(), past)
        self.assertEqual((status, body["error"]), (504, "deadline_exceeded"))
        self.assertEqual(self.recorder.invoked, [])

    def test_an_answer_produced_after_the_deadline_is_dropped(self) -> None:
        self.recorder.sleep_sec = 0.3
        status, body = self.invoke(support.envelope(), str(int(time.time() * 1000) + 100))
        self.assertEqual((status, body["error"]), (504, "deadline_exceeded"))
        self.assertIn("invocation dropped: its deadline passed", self.logs.getvalue())

    def test_a_future_deadline_passes_and_a_malformed_one_is_400(self) -> None:
        status, body = self.invoke(support.envelope(), str(int(time.time() * 1000) + 5_000))
        self.assertEqual((status, body), (200, {"decision": "allow"}))
        status, body = self.invoke(support.envelope(), "soon")
        self.assertEqual((status, body["error"]), (400, "bad_request"))
        self.assertIn("X-Corral-Deadline-Ms", body["message"])


class DeepJsonCase(unittest.TestCase):
    def setUp(self) -> None:
        support.capture_logs(self)
        self.recorder = Recorder()
        module = Module("deep", "Deep JSON.", [], [], self.recorder.invoke)
        self.server = ModuleServer(module, token=support.TOKEN, log=support.quiet_log, poll_interval=0.02).start()
        self.addCleanup(self.server.stop, 1.0)
        self.port = self.server.port
        self.assertEqual(support.post(self.port, INIT_PATH, support.init_message({})), (200, mock.ANY))

    def envelope_with_depth(self, depth: int) -> bytes:
        # The envelope object is level 1, the payload's arrays add depth - 1.
        nested = "[" * (depth - 1) + "]" * (depth - 1)
        return ('{"id":"deep","hook":"ingress","subject":"s","payload":%s}' % nested).encode()

    def test_past_64_levels_is_a_clear_400_and_the_server_keeps_serving(self) -> None:
        for depth in (65, 1_000, 100_000):
            status, _, body = support.request(self.port, "POST", INVOKE_PATH, raw=self.envelope_with_depth(depth))
            self.assertEqual((status, body["error"]), (400, "too_deep"), depth)
            self.assertIn("64", body["message"])
        status, _, body = support.request(self.port, "POST", INVOKE_PATH, raw=self.envelope_with_depth(64))
        self.assertEqual((status, body), (200, {"decision": "allow"}))
        self.assertEqual(self.recorder.invoked, ["deep"])

    def test_the_depth_check_is_iterative_and_ignores_brackets_in_strings(self) -> None:
        json_limits.check_depth(b'{"a":"[[[[[[[[[[\\"[[[[[[["}', limit=1)
        json_limits.check_depth(b"[" * 64 + b"]" * 64)
        with self.assertRaises(json_limits.JsonTooDeep):
            json_limits.check_depth(b"[" * 65 + b"]" * 65)
        with self.assertRaises(json_limits.JsonTooDeep):
            json_limits.check_depth(b"{" * 1_000_000)  # far beyond the recursion limit: no RecursionError
        with self.assertRaises(ValueError):
            json_limits.parse_json(b"[NaN]")


class SubprocessTrustCase(unittest.TestCase):
    def spawn(self, env: Dict[str, str]) -> support.ModuleProcess:
        proc = support.ModuleProcess(ECHO, env=env)
        self.addCleanup(proc.kill)
        return proc

    def test_a_module_without_a_token_refuses_to_start(self) -> None:
        proc = self.spawn({"CORRAL_MODULE_TOKEN": ""})
        self.assertEqual(proc.wait(), 1)
        records = proc.records()
        self.assertEqual(records[-1]["msg"], "module could not start")
        self.assertIn("CORRAL_MODULE_TOKEN is not set", records[-1]["error"])
        self.assertNotIn("serving", [r["msg"] for r in records])

    def test_the_unix_transport_listens_on_a_0600_socket_and_removes_it_on_stop(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o700)
            path = os.path.join(tmp, "echo.sock")
            # A socket left by an earlier run is replaced.
            stale = socket.socket(socket.AF_UNIX)
            stale.bind(path)
            stale.close()
            proc = self.spawn({"CORRAL_MODULE_PORT": "", "CORRAL_MODULE_SOCKET": path})
            self.assertEqual(proc.wait_serving(), path)
            self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))
            self.assertEqual(stat.S_IMODE(os.lstat(path).st_mode), 0o600)
            self.assertEqual(support.get(path, "/readyz", token=None)[0], 200)
            self.assertEqual(support.post(path, INIT_PATH, support.init_message({}), token=None)[0], 401)
            self.assertEqual(support.post(path, INIT_PATH, support.init_message({}))[0], 200)
            status, decision = support.post(path, INVOKE_PATH, support.envelope("sam"))
            self.assertEqual((status, decision["annotations"]), (200, {"echo.subject": "sam"}))
            proc.terminate()
            self.assertEqual(proc.wait(), 0)
            self.assertFalse(os.path.exists(path))

    def test_a_relative_socket_path_is_taken_from_the_working_directory(self) -> None:
        # What the host does for a module that runs as its own user: the socket in its own work dir.
        with tempfile.TemporaryDirectory() as tmp:
            proc = support.ModuleProcess(ECHO, env={"CORRAL_MODULE_PORT": "", "CORRAL_MODULE_SOCKET": "module.sock"}, cwd=tmp)
            self.addCleanup(proc.kill)
            self.assertEqual(proc.wait_serving(), "module.sock")
            path = os.path.join(tmp, "module.sock")
            self.assertEqual(support.post(path, INIT_PATH, support.init_message({}))[0], 200)
            proc.terminate()
            self.assertEqual(proc.wait(), 0)
            self.assertFalse(os.path.exists(path))

    def test_the_unix_transport_never_replaces_a_file_that_is_not_a_socket(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "precious")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("keep me\n")
            proc = self.spawn({"CORRAL_MODULE_PORT": "", "CORRAL_MODULE_SOCKET": path})
            self.assertEqual(proc.wait(), 1)
            self.assertIn("is not a socket", proc.records()[-1]["error"])
            with open(path, encoding="utf-8") as fh:
                self.assertEqual(fh.read(), "keep me\n")

    def test_listen_address_resolution(self) -> None:
        resolve = corral_module.resolve_listen
        self.assertEqual(resolve([], {"CORRAL_MODULE_SOCKET": "/s", "CORRAL_MODULE_PORT": "1"}), (None, "/s"))
        self.assertEqual(resolve(["--port", "5"], {"CORRAL_MODULE_SOCKET": "/s"}), (5, None))
        self.assertEqual(resolve(["--socket", "/t"], {}), (None, "/t"))
        with self.assertRaisesRegex(ValueError, "not both"):
            resolve(["--socket", "/t", "--port", "5"], {})


if __name__ == "__main__":
    unittest.main()
