"""The module protocol's frozen constants and the checks of what crosses it.

Contract version "1", host API version "1": the protocol paths, the decision kinds, the body
limit, and the checks of a WorkflowEnvelope (in) and a MiddlewareDecision (out), plus the JSON
encoding both directions use (bounded depth in, no NaN out).

Standard library only.
"""
from __future__ import annotations

import json
from typing import Any, Dict

from json_limits import MAX_JSON_DEPTH
from json_limits import parse_json as _parse_bounded_json
from module_errors import DecisionError, EnvelopeError

MIDDLEWARE_CONTRACT_VERSION = "1"
HOST_API_VERSION = "1"

READY_PATH = "/readyz"
HEALTH_PATH = "/healthz"
INIT_PATH = "/v1/middleware/init"
INVOKE_PATH = "/v1/middleware/invoke"

#: Routes any local process may call (the host probes them before and while the module runs).
OPEN_PATHS = (READY_PATH, HEALTH_PATH)

MAX_BODY_BYTES = 1024 * 1024

DECISIONS = ("allow", "deny", "modify")


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def validate_envelope(value: Any) -> Dict[str, Any]:
    """Checks a WorkflowEnvelope (``id``, ``hook``, ``subject``, ``payload``, ``metadata``?, ``deadline_ms``?)."""
    if not isinstance(value, dict):
        raise EnvelopeError("the envelope must be a JSON object")
    for key in ("id", "hook"):
        if not isinstance(value.get(key), str) or value[key] == "":
            raise EnvelopeError(f"envelope.{key} must be a non-empty string")
    if not isinstance(value.get("subject"), str):
        raise EnvelopeError("envelope.subject must be a string")
    if "payload" not in value:
        raise EnvelopeError("envelope.payload is required (null is a valid payload)")
    if "metadata" in value and not isinstance(value["metadata"], dict):
        raise EnvelopeError("envelope.metadata must be an object when present")
    if "deadline_ms" in value:
        deadline = value["deadline_ms"]
        if not _is_int(deadline) or deadline <= 0:
            raise EnvelopeError("envelope.deadline_ms must be a positive integer when present")
    return value


def validate_decision(value: Any) -> Dict[str, Any]:
    """Checks a MiddlewareDecision: allow | deny (reason required) | modify (payload required)."""
    if not isinstance(value, dict):
        raise DecisionError(f"a decision must be a dict, got {type(value).__name__}")
    kind = value.get("decision")
    if kind not in DECISIONS:
        raise DecisionError(f"decision must be one of {', '.join(DECISIONS)}, got {kind!r}")
    if "reason" in value and not isinstance(value["reason"], str):
        raise DecisionError("reason must be a string when present")
    if kind == "deny" and not isinstance(value.get("reason"), str):
        raise DecisionError("a deny decision needs a reason")
    if kind == "modify" and "payload" not in value:
        raise DecisionError("a modify decision needs a payload")
    if "annotations" in value:
        annotations = value["annotations"]
        if not isinstance(annotations, dict) or not all(isinstance(k, str) for k in annotations):
            raise DecisionError("annotations must be an object with string keys")
    return value


def parse_json(raw: bytes) -> Any:
    """UTF-8 JSON, at most ``MAX_JSON_DEPTH`` deep (``JsonTooDeep``), no NaN/Infinity (``ValueError``)."""
    return _parse_bounded_json(raw, MAX_JSON_DEPTH)


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON; NaN/Infinity and non-JSON values raise ``ValueError``/``TypeError``."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
