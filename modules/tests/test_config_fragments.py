"""The factory config fragments: shapes the host expects, scripts that exist, subtrees the modules accept."""
from __future__ import annotations

import glob
import json
import os
import unittest

try:
    from . import _support as support
except ImportError:  # run from inside modules/tests
    import _support as support  # type: ignore[no-redef]

import arca
import dator

COMPONENT_KEYS = {"kind", "module_id", "launch", "http", "sandbox_profile", "restart_policy", "stop_timeout_ms"}


class FragmentCase(unittest.TestCase):
    def component(self, fragment: dict, component_id: str, module_id: str, script: str) -> None:
        component = fragment["components"][component_id]
        self.assertEqual(set(component), COMPONENT_KEYS)
        self.assertEqual(component["kind"], "http_local_json")
        self.assertEqual(component["module_id"], module_id)
        # No --port {port}: the module reads CORRAL_MODULE_PORT or CORRAL_MODULE_SOCKET, so the same
        # fragment works with http.transport "tcp" and "unix".
        self.assertEqual(component["launch"], {"executable": "python3", "args": [f"{{module_dir}}/{script}"], "env": {}})
        self.assertEqual(component["http"], {"port": "auto", "startup_timeout_ms": 10000, "request_timeout_ms": 2000})
        self.assertEqual(component["sandbox_profile"], "module-restricted")
        self.assertEqual(component["restart_policy"], {"mode": "on_failure", "max_restarts": 3, "window_sec": 60})
        self.assertEqual(component["stop_timeout_ms"], 3000)
        self.assertTrue(os.path.isfile(os.path.join(support.MODULES_DIR, module_id, script)))

    def test_dator_fragment(self) -> None:
        fragment = support.load_fragment("dator", "config", "10-dator.json")
        self.assertEqual(set(fragment), {"components", "modules"})
        self.component(fragment, "middleware.dator", "dator", "dator.py")
        subtree = fragment["modules"]["dator"]
        self.assertEqual(subtree, {"allow_subjects": ["*"], "deny_subjects": [],
                                   "quota": {"per_subject": 1000, "window_sec": 60}})
        policy = dator.parse_config(subtree)
        self.assertTrue(policy.allow.match("anyone"))

    def test_arca_fragment(self) -> None:
        fragment = support.load_fragment("arca", "config", "10-arca.json")
        self.assertEqual(set(fragment), {"components", "modules"})
        self.component(fragment, "middleware.arca", "arca", "arca.py")
        self.assertEqual(fragment["modules"]["arca"], {"db_path": None})
        self.assertEqual(arca.resolve_db_path(fragment["modules"]["arca"], {"CORRAL_DATA_DIR": "/d"}),
                         "/d/arca/arca.sqlite3")

    def test_the_ingress_hook_runs_dator_then_arca(self) -> None:
        hooks = support.load_fragment("arca", "config", "20-hooks.json")
        self.assertEqual(hooks, {"hooks": {"ingress": ["middleware.dator", "middleware.arca"]}})

    def test_every_fragment_is_a_json_object(self) -> None:
        paths = sorted(glob.glob(os.path.join(support.MODULES_DIR, "*", "config", "*.json")))
        self.assertEqual([os.path.relpath(p, support.MODULES_DIR) for p in paths],
                         ["arca/config/10-arca.json", "arca/config/20-hooks.json", "dator/config/10-dator.json"])
        for path in paths:
            with open(path, encoding="utf-8") as fh:
                self.assertIsInstance(json.load(fh), dict)


if __name__ == "__main__":
    unittest.main()
