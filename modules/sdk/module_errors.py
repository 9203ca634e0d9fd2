"""The errors a module's code raises or the SDK maps to HTTP answers.

``HttpError`` is answered as ``{"error": code, "message": message}`` with its status;
``ModuleConfigError`` from ``on_init`` becomes 400 ``bad_config``; ``EnvelopeError`` and
``DecisionError`` are what the contract checks raise for a bad request or a bad answer.

Standard library only.
"""
from __future__ import annotations


class HttpError(Exception):
    """Raise from a route (or invoke_fn) to answer ``status`` with ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ModuleConfigError(ValueError):
    """Raise from ``on_init`` when the config subtree is invalid: the init answers 400 ``bad_config``."""


class EnvelopeError(ValueError):
    """A request body that is not a valid WorkflowEnvelope."""


class DecisionError(ValueError):
    """A value returned by ``invoke_fn`` that is not a valid MiddlewareDecision."""
