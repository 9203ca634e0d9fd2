"""The per-launch credential: only the host that launched a module may initialise, invoke or read it.

The host makes a fresh random token for every launch and gives it to the module in its environment
(``CORRAL_MODULE_TOKEN``: ``/proc/<pid>/environ`` is readable only by the module's own user and
root, unlike its argv). Every request but the ready and health probes must carry
``Authorization: Bearer <token>``; the SDK compares it in constant time and answers 401 otherwise.

Standard library only.
"""
from __future__ import annotations

import hmac
import os
from typing import Mapping, Optional

TOKEN_ENV = "CORRAL_MODULE_TOKEN"
#: Shortest token accepted: the host sends 64 hex characters (32 random bytes).
MIN_TOKEN_CHARS = 32

_BEARER = "bearer "


def token_from_env(environ: Optional[Mapping[str, str]] = None) -> str:
    """The launch token from ``CORRAL_MODULE_TOKEN``; ``ValueError`` saying what to do when absent or short."""
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    if token == "":
        raise ValueError(
            f"{TOKEN_ENV} is not set: a module serves only the host that launched it, and the host passes "
            f"this per-launch token in the environment (run the module under `corral up`, or set {TOKEN_ENV} "
            f"to a random value of at least {MIN_TOKEN_CHARS} characters and send it as Authorization: Bearer)"
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"{TOKEN_ENV} is {len(token)} characters; at least {MIN_TOKEN_CHARS} are required")
    return token


def check_token(token: str) -> str:
    """Returns ``token`` if it is long enough to guard a module; ``ValueError`` otherwise."""
    if not isinstance(token, str) or len(token.strip()) < MIN_TOKEN_CHARS:
        raise ValueError(f"a module server needs a token of at least {MIN_TOKEN_CHARS} characters")
    return token.strip()


def bearer_matches(authorization: Optional[str], token: str) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <token>`` (constant-time comparison)."""
    if authorization is None or authorization[: len(_BEARER)].lower() != _BEARER:
        return False
    given = authorization[len(_BEARER):].strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, token.encode("utf-8"))
