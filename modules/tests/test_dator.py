"""Dator: allow-list, deny-list and quota, in-process over HTTP and as the real script."""
from __future__ import annotations

import os
import threading
import unittest
from typing import Any, Dict, List

try:
    from . import _support as support
except ImportError:  # run from inside modules/tests
    import _support as support  # type: ignore[no-redef]

import dator
from corral_module import INIT_PATH, INVOKE_PATH, ModuleConfigError, ModuleServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class DatorCase(unittest.TestCase):
    def setUp(self) -> None:
        support.capture_logs(self)
        self.clock = FakeClock()
        self.module, self.state = dator.make_module(dator.Dator(clock=self.clock))
        self.server = ModuleServer(self.module, token=support.TOKEN, log=support.quiet_log, poll_interval=0.02).start()
        self.addCleanup(self.server.stop, 1.0)
        self.port = self.server.port

    def init(self, config: Any) -> Any:
        status, body = support.post(self.port, INIT_PATH, support.init_message(config, "middleware.dator", "dator"))
        self.assertEqual(status, 200, body)
        return body

    def decide(self, subject: str) -> Dict[str, Any]:
        status, body = support.post(self.port, INVOKE_PATH, support.envelope(subject))
        self.assertEqual(status, 200, body)
        return body

    def test_factory_config_allows_everyone_with_a_quota_of_1000(self) -> None:
        factory = support.load_fragment("dator", "config", "10-dator.json")["modules"]["dator"]
        report = self.init(factory)
        support.assert_valid_report(self, report, "dator")
        self.assertEqual(self.decide("anyone"), {"decision": "allow", "annotations": {"dator.remaining": 999}})
        self.assertEqual(self.decide("anyone")["annotations"]["dator.remaining"], 998)
        self.assertEqual(self.decide("someone-else")["annotations"]["dator.remaining"], 999)

    def test_allow_list_with_exact_names_and_prefixes(self) -> None:
        self.init({"allow_subjects": ["alice", "team-*"], "quota": None})
        self.assertEqual(self.decide("alice"), {"decision": "allow"})
        self.assertEqual(self.decide("team-red")["decision"], "allow")
        self.assertEqual(self.decide("team-")["decision"], "allow")
        self.assertEqual(self.decide("bob"), {"decision": "deny", "reason": "subject bob is not on the allow-list"})
        self.assertEqual(self.decide("team")["decision"], "deny")
        self.assertEqual(self.decide("alice2")["decision"], "deny")

    def test_deny_list_wins(self) -> None:
        self.init({"allow_subjects": ["*"], "deny_subjects": ["mallory", "bot-*"]})
        self.assertEqual(self.decide("mallory"), {"decision": "deny", "reason": "subject mallory is on the deny-list"})
        self.assertEqual(self.decide("bot-7")["decision"], "deny")
        self.assertEqual(self.decide("alice")["decision"], "allow")

    def test_quota_per_subject_within_the_window(self) -> None:
        self.init({"quota": {"per_subject": 3, "window_sec": 60}})
        self.assertEqual([self.decide("alice")["annotations"]["dator.remaining"] for _ in range(3)], [2, 1, 0])
        over = self.decide("alice")
        self.assertEqual(over["decision"], "deny")
        self.assertEqual(over["reason"], "subject alice is over its quota of 3 per 60s")
        self.assertEqual(over["annotations"]["dator.remaining"], 0)
        self.assertEqual(over["annotations"]["dator.retry_after_sec"], 60)
        self.assertEqual(self.decide("bob")["decision"], "allow")  # per subject
        self.clock.now += 59.5
        self.assertEqual(self.decide("alice")["decision"], "deny")
        self.clock.now += 0.5
        self.assertEqual(self.decide("alice"), {"decision": "allow", "annotations": {"dator.remaining": 2}})

    def test_tracked_subjects_are_bounded(self) -> None:
        self.init({"quota": {"per_subject": 5, "window_sec": 10}, "max_tracked_subjects": 2})
        self.decide("a")
        self.decide("b")
        refused = self.decide("c")
        self.assertEqual(refused["decision"], "deny")
        self.assertIn("maximum of 2 subjects", refused["reason"])
        self.assertEqual(self.decide("a")["decision"], "allow")  # known subjects keep working
        self.clock.now += 10  # the windows expire and are pruned
        self.assertEqual(self.decide("c")["decision"], "allow")
        self.assertLessEqual(self.state.tracked_subjects(), 2)

    def test_a_bad_config_subtree_is_refused_at_init(self) -> None:
        bad = [
            {"allow_subject": ["*"]},
            {"allow_subjects": "*"},
            {"allow_subjects": ["te*am"]},
            {"deny_subjects": [""]},
            {"quota": {"per_subject": 0, "window_sec": 60}},
            {"quota": {"per_subject": 1.5, "window_sec": 60}},
            {"quota": {"per_subject": 10, "window_sec": "60"}},
            {"quota": {"per_subject": 10, "window_sec": 60, "burst": 2}},
            {"quota": 5},
            ["*"],
        ]
        for config in bad:
            with self.subTest(config=config):
                status, body = support.post(self.port, INIT_PATH, support.init_message(config))
                self.assertEqual((status, body["error"]), (400, "bad_config"))
        self.assertFalse(self.module.initialised)

    def test_re_init_replaces_the_policy(self) -> None:
        self.init({"allow_subjects": ["alice"]})
        self.assertEqual(self.decide("bob")["decision"], "deny")
        self.init({"allow_subjects": ["bob"]})
        self.assertEqual(self.decide("bob")["decision"], "allow")

    def test_concurrent_requests_never_exceed_the_quota(self) -> None:
        self.init({"quota": {"per_subject": 25, "window_sec": 60}})
        outcomes: List[str] = []
        lock = threading.Lock()

        def client() -> None:
            for _ in range(10):
                decision = self.decide("shared")["decision"]
                with lock:
                    outcomes.append(decision)

        threads = [threading.Thread(target=client) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(support.TIMEOUT)
        self.assertEqual(len(outcomes), 50)
        self.assertEqual(outcomes.count("allow"), 25)

    def test_the_quota_map_is_thread_safe(self) -> None:
        state = dator.Dator()
        state.on_init({"quota": {"per_subject": 1000, "window_sec": 60}}, {})
        allowed = [0] * 8

        def worker(i: int) -> None:
            for n in range(400):
                if state.invoke({"id": "x", "hook": "h", "subject": f"s{n % 3}"})["decision"] == "allow":
                    allowed[i] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(support.TIMEOUT)
        self.assertEqual(sum(allowed), 3000)  # 3 subjects x 1000

    def test_parse_config_defaults(self) -> None:
        policy = dator.parse_config({})
        self.assertTrue(policy.allow.match("anything"))
        self.assertFalse(policy.deny.match("anything"))
        self.assertIsNone(policy.quota)
        with self.assertRaises(ModuleConfigError):
            dator.parse_config("x")


class DatorProcessCase(unittest.TestCase):
    def test_the_script_serves_the_protocol_and_exits_0_on_sigterm(self) -> None:
        proc = support.ModuleProcess(os.path.join(support.DATOR_DIR, "dator.py"), env={"CORRAL_MODULE_ID": "dator"})
        self.addCleanup(proc.kill)
        port = proc.wait_serving()
        self.assertEqual(support.get(port, "/readyz")[0], 200)
        status, report = support.post(port, INIT_PATH, support.init_message({"allow_subjects": ["alice"]}))
        self.assertEqual(status, 200)
        support.assert_valid_report(self, report, "dator")
        self.assertEqual(support.post(port, INVOKE_PATH, support.envelope("alice")), (200, {"decision": "allow"}))
        self.assertEqual(support.post(port, INVOKE_PATH, support.envelope("eve"))[1]["decision"], "deny")
        status, body = support.post(port, INVOKE_PATH, {"id": "x"})
        self.assertEqual((status, body["error"]), (400, "bad_envelope"))
        proc.terminate()
        self.assertEqual(proc.wait(), 0)
        self.assertTrue(all(r["module"] == "dator" for r in proc.records()))


if __name__ == "__main__":
    unittest.main()
