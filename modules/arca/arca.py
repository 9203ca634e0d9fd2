"""Arca: durably archives every envelope it sees, in SQLite, and answers who sent what.

Config subtree (``modules.arca``, received in middleware-init)::

    {"db_path": null}   # null/absent: $CORRAL_DATA_DIR/arca/arca.sqlite3; a relative path is under CORRAL_DATA_DIR

Invoke: the envelope is committed (WAL, synchronous=FULL) before the answer
``{"decision": "allow", "annotations": {"arca.record_id": <id>}}`` is sent. Arca is idempotent per
envelope id: an envelope whose id is already archived is not written again, and the answer names the
record it already has. An invocation whose deadline passed (``X-Corral-Deadline-Ms``) is rolled back
right before its commit, so an envelope the host already answered with a timeout is never archived.

``GET /v1/archive?subject=X&limit=N``: the records archived for subject X, newest first
(``limit`` default 50, at most 500): ``{"subject", "limit", "count", "records": [{"record_id",
"received_at", "envelope"}]}``.
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdk"))

from corral_module import (  # noqa: E402
    HttpError,
    check_deadline,
    Module,
    ModuleConfigError,
    RouteRequest,
    data_dir,
    log,
    run_module,
)

NAME = "arca"
DESCRIPTION = "Archives every envelope durably in SQLite and answers GET /v1/archive?subject=X."
CAPABILITIES = ["archive.envelopes", "archive.query_by_subject"]
OUTPUT_CONTRACTS = ["annotation:arca.record_id"]

ARCHIVE_PATH = "/v1/archive"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CONFIG_KEYS = {"db_path"}

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at TEXT NOT NULL,
        envelope_id TEXT NOT NULL,
        hook TEXT NOT NULL,
        subject TEXT NOT NULL,
        envelope TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS records_by_subject ON records (subject, id)",
)
# One row per envelope id. An archive written before Arca was idempotent may hold duplicates; then the
# index cannot be created, and the lookup inside append's write transaction alone keeps new ids unique.
_UNIQUE_ENVELOPE_ID = "CREATE UNIQUE INDEX IF NOT EXISTS records_by_envelope_id ON records (envelope_id)"
_ENVELOPE_ID_INDEX = "CREATE INDEX IF NOT EXISTS records_by_envelope ON records (envelope_id, id)"


def resolve_db_path(config: Any, environ: Optional[Dict[str, str]] = None) -> str:
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ModuleConfigError("the arca config must be an object")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ModuleConfigError(f"unknown arca config keys: {', '.join(unknown)} (known: db_path)")
    raw = config.get("db_path")
    if raw is None:
        return os.path.join(data_dir(environ), "arca", "arca.sqlite3")
    if not isinstance(raw, str) or raw.strip() == "":
        raise ModuleConfigError("db_path must be a non-empty string or null")
    if os.path.isabs(raw):
        return raw
    return os.path.join(data_dir(environ), raw)


class ArchiveStore:
    """One SQLite connection shared behind a lock; every append is committed before it returns."""

    def __init__(self, path: str) -> None:
        self.path = path
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: no implicit transactions; append() opens and commits its own.
        self._conn: Optional[sqlite3.Connection] = sqlite3.connect(
            path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"could not switch {path} to WAL (journal_mode={mode})")
            self._conn.execute("PRAGMA synchronous=FULL")  # a committed record survives power loss
            self._conn.execute("PRAGMA busy_timeout=5000")
            for statement in _SCHEMA:
                self._conn.execute(statement)
            self._index_envelope_ids(self._conn)
        except Exception:
            self._conn.close()
            self._conn = None
            raise

    def _index_envelope_ids(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute(_UNIQUE_ENVELOPE_ID)
        except sqlite3.IntegrityError:
            conn.execute(_ENVELOPE_ID_INDEX)
            log("warn", "the archive holds envelope ids twice (written before Arca was idempotent); "
                "new envelopes are still archived once each", db_path=self.path)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the archive is closed")
        return self._conn

    def append(self, envelope: Dict[str, Any], before_commit: Callable[[], None] = lambda: None) -> int:
        """Archives ``envelope`` once per id and returns its record id (the existing one for a known id).

        ``before_commit`` runs inside the write transaction right before COMMIT; if it raises, nothing
        is written (Arca passes the SDK's deadline check).
        """
        received_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            conn = self._connection()
            # BEGIN IMMEDIATE takes the write lock first, so the lookup and the insert are one step
            # even against another process on the same file.
            conn.execute("BEGIN IMMEDIATE")
            try:
                existing = conn.execute(
                    "SELECT id FROM records WHERE envelope_id = ? ORDER BY id LIMIT 1", (envelope["id"],)
                ).fetchone()
                if existing is not None:
                    conn.execute("ROLLBACK")
                    return int(existing[0])
                cursor = conn.execute(
                    "INSERT INTO records (received_at, envelope_id, hook, subject, envelope) VALUES (?, ?, ?, ?, ?)",
                    (received_at, envelope["id"], envelope["hook"], envelope["subject"], text),
                )
                record_id = int(cursor.lastrowid)
                before_commit()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return record_id

    def by_subject(self, subject: str, limit: int) -> List[Dict[str, Any]]:
        with self._lock:
            rows = self._connection().execute(
                "SELECT id, received_at, envelope FROM records WHERE subject = ? ORDER BY id DESC LIMIT ?",
                (subject, limit),
            ).fetchall()
        return [{"record_id": row[0], "received_at": row[1], "envelope": json.loads(row[2])} for row in rows]

    def journal_mode(self) -> str:
        with self._lock:
            return str(self._connection().execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class Arca:
    """The module's state: the open archive (replaced on a re-init with another db_path)."""

    def __init__(self, environ: Optional[Dict[str, str]] = None) -> None:
        self._environ = environ
        self._lock = threading.Lock()
        self.store: Optional[ArchiveStore] = None

    def on_init(self, config: Any, _init: Dict[str, Any]) -> None:
        path = resolve_db_path(config, self._environ)
        with self._lock:
            if self.store is not None and self.store.path == path:
                return
            try:
                store = ArchiveStore(path)
            except (OSError, sqlite3.Error) as exc:
                raise ModuleConfigError(f"cannot open the archive at {path}: {exc}") from None
            old, self.store = self.store, store
        if old is not None:
            old.close()
        log("info", "archive open", db_path=path)

    def _store(self) -> ArchiveStore:
        with self._lock:
            store = self.store
        if store is None:
            raise HttpError(409, "not_initialised", "the archive is not open yet (no middleware-init)")
        return store

    def invoke(self, envelope: Dict[str, Any]) -> Dict[str, Any]:
        record_id = self._store().append(envelope, before_commit=lambda: check_deadline("archiving the envelope"))
        return {"decision": "allow", "annotations": {"arca.record_id": record_id}}

    def archive_route(self, request: RouteRequest) -> Tuple[int, Dict[str, Any]]:
        subject = request.param("subject")
        if subject is None:
            raise HttpError(400, "bad_request", "the subject query parameter is required")
        raw_limit = request.param("limit")
        limit = DEFAULT_LIMIT
        if raw_limit is not None:
            try:
                limit = int(raw_limit)
            except ValueError:
                raise HttpError(400, "bad_request", f"limit must be an integer, got {raw_limit!r}") from None
            if limit < 1:
                raise HttpError(400, "bad_request", f"limit must be at least 1, got {limit}")
            limit = min(limit, MAX_LIMIT)
        records = self._store().by_subject(subject, limit)
        return 200, {"subject": subject, "limit": limit, "count": len(records), "records": records}

    def on_shutdown(self) -> None:
        with self._lock:
            store, self.store = self.store, None
        if store is not None:
            store.close()


def make_module(arca: Optional[Arca] = None) -> Tuple[Module, Arca]:
    """The module and its state (tests serve it in-process)."""
    state = arca or Arca()
    module = Module(NAME, DESCRIPTION, CAPABILITIES, OUTPUT_CONTRACTS, state.invoke,
                    extra_routes={ARCHIVE_PATH: state.archive_route},
                    on_init=state.on_init, on_shutdown=state.on_shutdown)
    return module, state


def main() -> None:
    state = Arca()
    run_module(NAME, DESCRIPTION, CAPABILITIES, OUTPUT_CONTRACTS, state.invoke,
               extra_routes={ARCHIVE_PATH: state.archive_route},
               on_init=state.on_init, on_shutdown=state.on_shutdown)


if __name__ == "__main__":
    main()
