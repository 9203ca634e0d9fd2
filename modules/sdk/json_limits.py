"""Bounded JSON decoding: a body nested deeper than ``MAX_JSON_DEPTH`` is refused before it is parsed.

``json.loads`` recurses once per nesting level, so a body like ``[[[[...]]]]`` a few thousand levels
deep raises ``RecursionError`` (and a module that lets it escape resets the connection). The depth is
counted here first, without recursion: a regular expression skips over strings (where brackets do not
count) and a loop counts the brackets between them, stopping as soon as the limit is passed.

Standard library only.
"""
from __future__ import annotations

import json
import re
from typing import Any

#: The deepest nesting of arrays and objects a module accepts (the host uses the same limit).
MAX_JSON_DEPTH = 64

# A complete JSON string (escapes included), or one structural bracket. An unterminated string does
# not match as a string; its quote is skipped and json.loads reports the body as malformed.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_OPENERS = (ord("["), ord("{"))


class JsonTooDeep(ValueError):
    """A JSON text nests arrays and objects deeper than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the JSON nests deeper than {limit} levels of arrays and objects")
        self.limit = limit


def check_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Raises ``JsonTooDeep`` when ``raw`` nests deeper than ``limit``; iterative, stops at the first excess."""
    depth = 0
    for match in _TOKEN.finditer(raw):
        first = raw[match.start()]
        if first in _OPENERS:
            depth += 1
            if depth > limit:
                raise JsonTooDeep(limit)
        elif first != ord('"'):
            depth -= 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decodes UTF-8 JSON (no NaN/Infinity); ``JsonTooDeep`` past ``max_depth``, ``ValueError`` if malformed."""
    check_depth(raw, max_depth)
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
