"""Arca: durable archive in SQLite, the archive route, persistence across restarts."""
from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
import unittest
from typing import Any, Dict, List

try:
    from . import _support as support
except ImportError:  # run from inside modules/tests
    import _support as support  # type: ignore[no-redef]

import arca
from corral_module import DEADLINE_HEADER, INIT_PATH, INVOKE_PATH, ModuleConfigError, ModuleServer


class ArcaServing(unittest.TestCase):
    """Serves Arca in-process on a fresh data dir (helpers only, no tests)."""

    def setUp(self) -> None:
        support.capture_logs(self)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.data_dir = tmp.name
        self.default_db = os.path.join(self.data_dir, "arca", "arca.sqlite3")

    def start(self) -> ModuleServer:
        module, _ = arca.make_module(arca.Arca(environ={"CORRAL_DATA_DIR": self.data_dir}))
        server = ModuleServer(module, token=support.TOKEN, log=support.quiet_log, poll_interval=0.02).start()
        self.addCleanup(server.stop, 1.0)
        return server

    def init(self, port: int, config: Any) -> Any:
        status, body = support.post(port, INIT_PATH, support.init_message(config, "middleware.arca", "arca"))
        self.assertEqual(status, 200, body)
        return body

    def archive(self, port: int, envelope: Dict[str, Any]) -> int:
        status, decision = support.post(port, INVOKE_PATH, envelope)
        self.assertEqual(status, 200, decision)
        self.assertEqual(decision["decision"], "allow")
        self.assertEqual(set(decision["annotations"]), {"arca.record_id"})
        return decision["annotations"]["arca.record_id"]


class ArcaCase(ArcaServing):
    def test_factory_config_uses_the_data_dir_in_wal_mode(self) -> None:
        server = self.start()
        factory = support.load_fragment("arca", "config", "10-arca.json")["modules"]["arca"]
        support.assert_valid_report(self, self.init(server.port, factory), "arca")
        self.assertTrue(os.path.isfile(self.default_db))
        self.assertEqual(server.module.server is not None, True)
        with sqlite3.connect(self.default_db) as conn:
            self.assertEqual(conn.execute("PRAGMA journal_mode").fetchone()[0], "wal")

    def test_every_envelope_is_committed_before_the_reply(self) -> None:
        server = self.start()
        self.init(server.port, {})
        env = support.envelope("alice", payload={"text": "zażółć", "n": [1, 2]}, metadata={"m": True})
        record_id = self.archive(server.port, env)
        # Another connection sees it as soon as the reply is in: it was committed first.
        reader = sqlite3.connect(self.default_db)
        self.addCleanup(reader.close)
        row = reader.execute("SELECT subject, envelope_id, hook FROM records WHERE id = ?", (record_id,)).fetchone()
        self.assertEqual(row, ("alice", env["id"], "ingress"))

    def test_archive_route_answers_newest_first_with_a_bounded_limit(self) -> None:
        server = self.start()
        port = server.port
        self.init(port, {})
        sent = [support.envelope("alice") for _ in range(3)]
        ids = [self.archive(port, env) for env in sent]
        self.archive(port, support.envelope("bob"))
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 3)

        status, body = support.get(port, "/v1/archive?subject=alice")
        self.assertEqual(status, 200)
        self.assertEqual((body["subject"], body["limit"], body["count"]), ("alice", 50, 3))
        self.assertEqual([r["record_id"] for r in body["records"]], list(reversed(ids)))
        self.assertEqual([r["envelope"] for r in body["records"]], list(reversed(sent)))
        self.assertTrue(all(r["received_at"].endswith("Z") for r in body["records"]))

        status, body = support.get(port, "/v1/archive?subject=alice&limit=2")
        self.assertEqual([r["record_id"] for r in body["records"]], [ids[2], ids[1]])
        self.assertEqual(support.get(port, "/v1/archive?subject=alice&limit=100000")[1]["limit"], 500)
        self.assertEqual(support.get(port, "/v1/archive?subject=nobody")[1]["records"], [])
        self.assertEqual(support.get(port, "/v1/archive?subject=")[1]["records"], [])
        for bad in ("/v1/archive", "/v1/archive?subject=alice&limit=0", "/v1/archive?subject=alice&limit=ten"):
            with self.subTest(path=bad):
                status, body = support.get(port, bad)
                self.assertEqual((status, body["error"]), (400, "bad_request"))

    def test_records_survive_a_restart_on_the_same_database(self) -> None:
        db = os.path.join(self.data_dir, "elsewhere", "a.sqlite3")
        first = self.start()
        self.init(first.port, {"db_path": db})
        before = [self.archive(first.port, support.envelope("carol")) for _ in range(2)]
        self.assertTrue(first.stop(1.0))  # on_shutdown closes the database

        second = self.start()
        self.init(second.port, {"db_path": db})
        body = support.get(second.port, "/v1/archive?subject=carol")[1]
        self.assertEqual([r["record_id"] for r in body["records"]], list(reversed(before)))
        self.assertGreater(self.archive(second.port, support.envelope("carol")), before[-1])

    def test_before_init_nothing_is_archived(self) -> None:
        server = self.start()
        status, body = support.post(server.port, INVOKE_PATH, support.envelope())
        self.assertEqual((status, body["error"]), (409, "not_initialised"))
        status, body = support.get(server.port, "/v1/archive?subject=alice")
        self.assertEqual((status, body["error"]), (409, "not_initialised"))

    def test_config_subtree(self) -> None:
        env = {"CORRAL_DATA_DIR": "/data"}
        self.assertEqual(arca.resolve_db_path(None, env), "/data/arca/arca.sqlite3")
        self.assertEqual(arca.resolve_db_path({"db_path": None}, env), "/data/arca/arca.sqlite3")
        self.assertEqual(arca.resolve_db_path({"db_path": "x/y.db"}, env), "/data/x/y.db")
        self.assertEqual(arca.resolve_db_path({"db_path": "/abs.db"}, env), "/abs.db")
        for bad in ({"db": "x"}, {"db_path": ""}, {"db_path": 3}, "x"):
            with self.subTest(config=bad), self.assertRaises(ModuleConfigError):
                arca.resolve_db_path(bad, env)
        server = self.start()
        status, body = support.post(server.port, INIT_PATH, support.init_message({"dbpath": "x"}))
        self.assertEqual((status, body["error"]), (400, "bad_config"))


class ArcaIdempotencyCase(ArcaServing):
    """One row per envelope id, and nothing archived for an invocation the host stopped waiting for."""

    def rows(self, envelope_id: str) -> int:
        with sqlite3.connect(self.default_db) as conn:
            return int(conn.execute("SELECT count(*) FROM records WHERE envelope_id = ?", (envelope_id,)).fetchone()[0])

    def test_the_same_envelope_id_twice_answers_the_same_record_and_writes_one_row(self) -> None:
        server = self.start()
        self.init(server.port, {})
        env = support.envelope("erin")
        first = self.archive(server.port, env)
        second = self.archive(server.port, dict(env, payload={"changed": True}))
        self.assertEqual(first, second)
        self.assertEqual(self.rows(env["id"]), 1)
        self.assertNotEqual(self.archive(server.port, support.envelope("erin")), first)

    def test_a_stalled_invocation_past_its_deadline_commits_nothing(self) -> None:
        server = self.start()
        self.init(server.port, {})
        env = support.envelope("frank")
        deadline = str(int(time.time() * 1000) + 200)
        answers: List[Any] = []
        # Arca stalls: another writer holds the archive past the deadline, then lets go.
        other = sqlite3.connect(self.default_db, isolation_level=None)
        self.addCleanup(other.close)
        other.execute("BEGIN IMMEDIATE")
        caller = threading.Thread(target=lambda: answers.append(
            support.post(server.port, INVOKE_PATH, env, headers={DEADLINE_HEADER: deadline})))
        caller.start()
        time.sleep(0.4)
        other.execute("COMMIT")
        caller.join(support.TIMEOUT)
        self.assertEqual([(status, body["error"]) for status, body in answers], [(504, "deadline_exceeded")])
        self.assertEqual(self.rows(env["id"]), 0)
        # The same envelope sent again in time is archived once.
        self.archive(server.port, env)
        self.assertEqual(self.rows(env["id"]), 1)

    def test_an_archive_with_duplicate_ids_from_before_still_opens_and_stays_idempotent(self) -> None:
        os.makedirs(os.path.dirname(self.default_db))
        with sqlite3.connect(self.default_db) as conn:
            conn.execute(arca._SCHEMA[0])
            for _ in range(2):
                conn.execute("INSERT INTO records (received_at, envelope_id, hook, subject, envelope) "
                             "VALUES ('t', 'dup', 'ingress', 's', '{}')")
        server = self.start()
        self.init(server.port, {})
        self.assertEqual(self.archive(server.port, support.envelope("s", id="dup")), 1)
        self.assertEqual(self.rows("dup"), 2)


class ArcaProcessCase(unittest.TestCase):
    def run_arca(self, data_dir: str) -> support.ModuleProcess:
        proc = support.ModuleProcess(os.path.join(support.ARCA_DIR, "arca.py"),
                                     env={"CORRAL_MODULE_ID": "arca", "CORRAL_DATA_DIR": data_dir})
        self.addCleanup(proc.kill)
        port = proc.wait_serving()
        status, report = support.post(port, INIT_PATH, support.init_message({"db_path": None}))
        self.assertEqual(status, 200, report)
        support.assert_valid_report(self, report, "arca")
        return proc

    def test_the_archive_persists_across_process_restarts(self) -> None:
        with tempfile.TemporaryDirectory() as data_dir:
            first = self.run_arca(data_dir)
            assert first.port is not None
            env = support.envelope("dave", payload={"k": "v"})
            status, decision = support.post(first.port, INVOKE_PATH, env)
            self.assertEqual((status, decision), (200, {"decision": "allow", "annotations": {"arca.record_id": 1}}))
            first.terminate()
            self.assertEqual(first.wait(), 0)

            second = self.run_arca(data_dir)
            assert second.port is not None
            status, body = support.get(second.port, "/v1/archive?subject=dave&limit=5")
            self.assertEqual(status, 200)
            self.assertEqual([(r["record_id"], r["envelope"]) for r in body["records"]], [(1, env)])
            self.assertEqual(support.post(second.port, INVOKE_PATH, support.envelope("dave"))[1]["annotations"],
                             {"arca.record_id": 2})
            second.terminate()
            self.assertEqual(second.wait(), 0)
            self.assertTrue(os.path.isfile(os.path.join(data_dir, "arca", "arca.sqlite3")))


if __name__ == "__main__":
    unittest.main()
