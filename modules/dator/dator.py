"""Dator: grants or refuses work per subject (allow-list, deny-list, per-subject quota).

Config subtree (``modules.dator``, received in middleware-init)::

    {
      "allow_subjects": ["*"],            # "*" = everyone, "team-*" = prefix, else an exact name
      "deny_subjects": [],                # same patterns; a deny match wins over an allow match
      "quota": {"per_subject": 1000, "window_sec": 60},   # null = no quota
      "max_tracked_subjects": 100000      # quota windows held at once; past it new subjects are denied
    }

Decisions: ``deny`` (subject on the deny-list / not on the allow-list / over its quota), else
``allow`` with ``annotations: {"dator.remaining": n}`` (allowances left in the subject's window;
omitted when there is no quota). The quota window is fixed per subject: it opens at the subject's
first allowed request and lasts ``window_sec``.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdk"))

from corral_module import Module, ModuleConfigError, run_module  # noqa: E402

NAME = "dator"
DESCRIPTION = "Grants or refuses work per subject: allow-list, deny-list and a per-subject quota."
CAPABILITIES = ["policy.subject_allowlist", "policy.subject_denylist", "policy.subject_quota"]
OUTPUT_CONTRACTS = ["annotation:dator.remaining", "annotation:dator.retry_after_sec"]

CONFIG_KEYS = {"allow_subjects", "deny_subjects", "quota", "max_tracked_subjects"}
DEFAULT_MAX_TRACKED_SUBJECTS = 100_000


class SubjectPatterns:
    """``*`` matches everything, ``prefix*`` a prefix, anything else exactly."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.any = "*" in patterns
        self.exact = {p for p in patterns if not p.endswith("*")}
        self.prefixes = tuple(p[:-1] for p in patterns if p.endswith("*") and p != "*")

    def match(self, subject: str) -> bool:
        return self.any or subject in self.exact or subject.startswith(self.prefixes)


class Quota:
    def __init__(self, per_subject: int, window_sec: float) -> None:
        self.per_subject = per_subject
        self.window_sec = window_sec


class Policy:
    def __init__(self, allow: SubjectPatterns, deny: SubjectPatterns, quota: Optional[Quota], max_tracked: int) -> None:
        self.allow = allow
        self.deny = deny
        self.quota = quota
        self.max_tracked = max_tracked


def _patterns(config: Dict[str, Any], key: str, default: List[str]) -> SubjectPatterns:
    value = config.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, list):
        raise ModuleConfigError(f"{key} must be a list of subject patterns")
    for i, pattern in enumerate(value):
        if not isinstance(pattern, str) or pattern == "":
            raise ModuleConfigError(f"{key}[{i}] must be a non-empty string")
        if "*" in pattern[:-1]:
            raise ModuleConfigError(f"{key}[{i}] {pattern!r}: '*' is only allowed at the end (a prefix pattern)")
    return SubjectPatterns(value)


def _positive_number(value: Any, path: str, integer: bool) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        raise ModuleConfigError(f"{path} must be a positive {'integer' if integer else 'number'}, got {value!r}")
    return int(value) if integer else float(value)


def parse_config(config: Any) -> Policy:
    """The policy of a config subtree; a bad subtree is a ``ModuleConfigError`` (init answers 400)."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ModuleConfigError("the dator config must be an object")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ModuleConfigError(f"unknown dator config keys: {', '.join(unknown)} (known: {', '.join(sorted(CONFIG_KEYS))})")
    allow = _patterns(config, "allow_subjects", ["*"])
    deny = _patterns(config, "deny_subjects", [])
    quota = None
    raw_quota = config.get("quota")
    if raw_quota is not None:
        if not isinstance(raw_quota, dict):
            raise ModuleConfigError("quota must be an object {per_subject, window_sec} or null")
        extra = sorted(set(raw_quota) - {"per_subject", "window_sec"})
        if extra:
            raise ModuleConfigError(f"unknown quota keys: {', '.join(extra)}")
        quota = Quota(
            _positive_number(raw_quota.get("per_subject"), "quota.per_subject", integer=True),
            _positive_number(raw_quota.get("window_sec"), "quota.window_sec", integer=False),
        )
    max_tracked = _positive_number(config.get("max_tracked_subjects", DEFAULT_MAX_TRACKED_SUBJECTS),
                                   "max_tracked_subjects", integer=True)
    return Policy(allow, deny, quota, max_tracked)


def _window_text(seconds: float) -> str:
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds}s"


class Dator:
    """The module's state: the policy and the quota windows, behind one lock (handlers are threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._policy = parse_config({})
        self._windows: Dict[str, List[float]] = {}  # subject -> [window start, allowances used]

    def on_init(self, config: Any, _init: Dict[str, Any]) -> None:
        policy = parse_config(config)
        with self._lock:
            self._policy = policy
            self._windows = {}

    def invoke(self, envelope: Dict[str, Any]) -> Dict[str, Any]:
        subject = envelope["subject"]
        with self._lock:
            policy = self._policy
            if policy.deny.match(subject):
                return {"decision": "deny", "reason": f"subject {subject} is on the deny-list"}
            if not policy.allow.match(subject):
                return {"decision": "deny", "reason": f"subject {subject} is not on the allow-list"}
            quota = policy.quota
            if quota is None:
                return {"decision": "allow"}
            now = self._clock()
            window = self._windows.get(subject)
            if window is None or now - window[0] >= quota.window_sec:
                if window is None and len(self._windows) >= policy.max_tracked:
                    self._prune(now, quota.window_sec)
                    if len(self._windows) >= policy.max_tracked:
                        return {
                            "decision": "deny",
                            "reason": f"dator is tracking its maximum of {policy.max_tracked} subjects; retry later",
                        }
                window = [now, 0]
                self._windows[subject] = window
            if window[1] >= quota.per_subject:
                retry = max(0.0, quota.window_sec - (now - window[0]))
                return {
                    "decision": "deny",
                    "reason": (f"subject {subject} is over its quota of {quota.per_subject} per "
                               f"{_window_text(quota.window_sec)}"),
                    "annotations": {"dator.remaining": 0, "dator.retry_after_sec": math.ceil(retry)},
                }
            window[1] += 1
            return {"decision": "allow", "annotations": {"dator.remaining": int(quota.per_subject - window[1])}}

    def _prune(self, now: float, window_sec: float) -> None:
        expired = [s for s, (start, _) in self._windows.items() if now - start >= window_sec]
        for subject in expired:
            del self._windows[subject]

    def tracked_subjects(self) -> int:
        with self._lock:
            return len(self._windows)


def make_module(dator: Optional[Dator] = None) -> Tuple[Module, Dator]:
    """The module and its state (tests serve it in-process)."""
    state = dator or Dator()
    module = Module(NAME, DESCRIPTION, CAPABILITIES, OUTPUT_CONTRACTS, state.invoke, on_init=state.on_init)
    return module, state


def main() -> None:
    state = Dator()
    run_module(NAME, DESCRIPTION, CAPABILITIES, OUTPUT_CONTRACTS, state.invoke, on_init=state.on_init)


if __name__ == "__main__":
    main()
