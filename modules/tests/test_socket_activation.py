"""Socket activation on real processes: a module serves on the socket passed as fd 3 (LISTEN_FDS/LISTEN_PID),
keeps serving connections made while it was down, refuses a wrong socket clearly, and binds its own when run by hand."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
from typing import Dict, List, Optional

try:
    from . import _support as support
except ImportError:  # run from inside modules/tests
    import _support as support  # type: ignore[no-redef]

from socket_activation import inherited_listener

FIXTURE = os.path.join(support.FIXTURES_DIR, "activation_module.py")
#: The launcher's last exec step: LISTEN_PID is the pid of the process that runs the module.
LISTEN_PID_STEP = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "corral-listen"]


def launch(fd3: int, env: Optional[Dict[str, str]] = None, listen_pid_step: bool = True) -> subprocess.Popen:
    """Starts the fixture with ``fd3`` as its fd 3, the way the host does (clean env, LISTEN_FDS=1)."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CORRAL_MODULE_TOKEN": support.TOKEN,
             "CORRAL_MODULE_PORT": "0", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http", "PYTHONDONTWRITEBYTECODE": "1"}
    clean.update(env or {})
    os.set_inheritable(fd3, True)
    argv: List[str] = (LISTEN_PID_STEP if listen_pid_step else []) + [sys.executable, FIXTURE]
    return subprocess.Popen(argv, env=clean, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, close_fds=False, preexec_fn=lambda: os.dup2(fd3, 3))


def serving_line(proc: subprocess.Popen) -> Dict[str, object]:
    """The module's "serving" log record (or an AssertionError with its stderr when it exited instead)."""
    assert proc.stderr is not None
    seen: List[str] = []
    for line in proc.stderr:
        seen.append(line)
        record = json.loads(line)
        if record.get("msg") == "serving":
            return record
    raise AssertionError(f"the module exited ({proc.wait(support.TIMEOUT)}) without serving: {''.join(seen)}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(support.TIMEOUT)
    if proc.stderr is not None:
        proc.stderr.close()


class SocketActivationTest(unittest.TestCase):
    def bound_tcp(self) -> socket.socket:
        """A socket bound on 127.0.0.1 and not listening: what the host passes on a first launch."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.addCleanup(sock.close)
        return sock

    def test_serves_on_the_passed_socket_and_leaves_no_listen_variables_to_its_children(self) -> None:
        held = self.bound_tcp()
        port = held.getsockname()[1]
        proc = launch(held.fileno())
        self.addCleanup(stop, proc)
        record = serving_line(proc)
        self.assertEqual(record["port"], port)  # CORRAL_MODULE_PORT=0 would have given another port
        status, body = support.get(port, "/activation")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"listen_env": [], "fd3_inherited": False, "pid": proc.pid})

    def test_a_connection_made_while_the_module_is_down_is_answered_by_the_next_process(self) -> None:
        held = self.bound_tcp()
        port = held.getsockname()[1]
        first = launch(held.fileno())
        serving_line(first)
        stop(first)  # SIGKILL: nothing of the module runs, the host's socket still listens
        client = socket.create_connection(("127.0.0.1", port), timeout=support.TIMEOUT)  # queued, not refused
        self.addCleanup(client.close)
        client.sendall(b"GET /readyz HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        second = launch(held.fileno())
        self.addCleanup(stop, second)
        serving_line(second)
        answer = support.read_until_closed(client)
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:200])

    def test_a_unix_socket_where_a_port_was_expected_is_refused_with_the_reason(self) -> None:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.bind(os.path.join(directory, "m.sock"))
        proc = launch(sock.fileno())
        self.addCleanup(stop, proc)
        self.assertEqual(proc.wait(support.TIMEOUT), 1)
        assert proc.stderr is not None
        error = proc.stderr.read()
        self.assertIn("fd 3 is AF_UNIX", error)
        self.assertIn("told to listen on AF_INET", error)

    def test_fd_3_that_is_not_a_socket_is_refused_with_the_reason(self) -> None:
        with tempfile.TemporaryFile() as not_a_socket:
            proc = launch(not_a_socket.fileno())
            self.addCleanup(stop, proc)
            self.assertEqual(proc.wait(support.TIMEOUT), 1)
            assert proc.stderr is not None
            self.assertIn("LISTEN_FDS=1 but fd 3 is not a socket", proc.stderr.read())

    def test_listen_variables_meant_for_another_pid_are_ignored_and_the_module_binds_its_own_port(self) -> None:
        held = self.bound_tcp()
        proc = launch(held.fileno(), env={"LISTEN_PID": "1"}, listen_pid_step=False)
        self.addCleanup(stop, proc)
        record = serving_line(proc)
        port = record["port"]
        self.assertIsInstance(port, int)
        self.assertNotEqual(port, held.getsockname()[1])
        self.assertEqual(support.get(port, "/activation")[1]["listen_env"], [])  # type: ignore[index]

    def test_no_listen_fds_means_no_inherited_socket_and_a_missing_pid_is_an_error(self) -> None:
        self.assertIsNone(inherited_listener(socket.AF_INET, environ={}))
        env = {"LISTEN_FDS": "1"}
        with self.assertRaisesRegex(ValueError, "without a numeric LISTEN_PID"):
            inherited_listener(socket.AF_INET, environ=env)
        self.assertEqual(env, {})  # unset even when refused


if __name__ == "__main__":
    unittest.main()
