"""The embedded dedup index: one SQLite file that several processes on one machine share.

A transaction takes the write lock up front (``BEGIN IMMEDIATE``), so nothing it reads can
change before its commit and a decision never needs a re-run. Like every backend it holds
no decision logic and keeps no entries in process memory between transactions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipeline.dedup.index import Entry, IndexView, StagedView
from pipeline.sqlite_files import open_shared, write_transaction

T = TypeVar("T")

_SCHEMA = """
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS entries_by_expiry ON entries (expires_at);
"""


class SqliteDedupIndex:
    """The embedded default: one SQLite file, safe for several processes on one machine."""

    def __init__(self, path: Path, *, horizon_s: float = 7 * 24 * 3600.0) -> None:
        self._horizon_s = horizon_s
        self._db = open_shared(path, _SCHEMA)

    def _read(self, keys: list[str]) -> dict[str, Entry]:
        now = time.time()
        found: dict[str, Entry] = {}
        for start in range(0, len(keys), 500):  # SQLite caps bound parameters per statement
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, value FROM entries WHERE key IN ({marks}) AND expires_at >= ?",  # noqa: S608
                (*chunk, now),
            )
            found.update((key, json.loads(value)) for key, value in rows)
        return found

    def transact(self, decide: Callable[[IndexView], T]) -> T:
        # The write lock is taken up front: other processes wait, so nothing read here can
        # change before the commit and ``decide`` never needs a re-run.
        with write_transaction(self._db) as db:
            view = StagedView(self._read)
            result = decide(view)
            expires_at = time.time() + self._horizon_s
            db.executemany(
                "INSERT OR REPLACE INTO entries (key, value, expires_at) VALUES (?, ?, ?)",
                [(k, json.dumps(v, separators=(",", ":")), expires_at) for k, v in view.staged.items()],
            )
        return result

    def expire(self) -> int:
        cursor = self._db.execute("DELETE FROM entries WHERE expires_at < ?", (time.time(),))
        return cursor.rowcount

    def entry_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        self._db.close()
