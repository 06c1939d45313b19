"""The embedded dedup index: one SQLite file that several processes on one machine share.

A transaction takes the write lock up front (``BEGIN IMMEDIATE``), so nothing it reads can
change before its commit and a decision never needs a re-run. Like every backend it holds
no decision logic and keeps no entries in process memory between transactions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from pipeline.dedup.entries import BAND_LAYOUT_KEY, band_layout_marker, kind_of
from pipeline.dedup.index import (
    Entry,
    IndexStats,
    IndexView,
    KindStats,
    ReadOnlyView,
    StagedView,
    decode_entry,
    encode_entry,
)
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
        self._path = path
        self._db = open_shared(path, _SCHEMA)
        self._mark_band_layout()

    def _mark_band_layout(self) -> None:
        """Writes ``meta:band-layout`` once, for the first worker to open the index (``entries.BandLayoutEntry``)."""
        marked = "SELECT 1 FROM entries WHERE key = ?"
        if self._db.execute(marked, (BAND_LAYOUT_KEY,)).fetchone():
            return  # every open but the first: no write lock taken
        with write_transaction(self._db) as db:
            if db.execute(marked, (BAND_LAYOUT_KEY,)).fetchone():
                return  # another worker marked it while this one waited for the lock
            # No entry outlives the latest expiry (the expiry index finds it at once).
            (latest,) = db.execute(
                "SELECT max(expires_at) FROM entries WHERE expires_at >= ?", (time.time(),)
            ).fetchone()
            db.execute(
                "INSERT INTO entries (key, value, expires_at) VALUES (?, ?, ?)",
                (BAND_LAYOUT_KEY, encode_entry(dict(band_layout_marker(latest))), float("inf")),  # never expires
            )

    def _read(self, keys: list[str]) -> dict[str, Entry]:
        # All keys in one bound JSON array: no cap on bound parameters to chunk around, and the
        # primary key is still what SQLite searches by (EXPLAIN QUERY PLAN: USING INDEX ... key=?).
        # In key order, so that neighbouring look-ups walk neighbouring pages.
        rows = self._db.execute(
            "SELECT key, value FROM entries WHERE key IN (SELECT value FROM json_each(?)) AND expires_at >= ?",
            (json.dumps(sorted(keys)), time.time()),
        )
        return {key: decode_entry(value) for key, value in rows}

    def transact(self, decide: Callable[[IndexView], T]) -> T:
        # The write lock is taken up front: other processes wait, so nothing read here can
        # change before the commit and ``decide`` never needs a re-run.
        with write_transaction(self._db) as db:
            view = StagedView(self._read)
            result = decide(view)
            expires_at = time.time() + self._horizon_s
            encoded = view.encoded()
            # In key order: band keys are hashes, so in staging order every row would land on
            # a random page of the key index; sorted, consecutive rows share pages (a third
            # less CPU for the ~50 rows an article writes). Keys are distinct: order changes nothing stored.
            db.executemany(
                "INSERT OR REPLACE INTO entries (key, value, expires_at) VALUES (?, ?, ?)",
                ((k, encoded[k], expires_at) for k in sorted(encoded)),
            )
        return result

    def read(self, look: Callable[[IndexView], T]) -> T:
        # A deferred transaction: in WAL mode it reads one consistent snapshot and takes no
        # lock that writers wait on, so explaining a decision never stalls the pipeline.
        self._db.execute("BEGIN")
        try:
            return look(ReadOnlyView(self._read))
        finally:
            self._db.execute("ROLLBACK")

    def stats(self) -> IndexStats:
        rows = self._db.execute(
            "SELECT key, expires_at >= :now, length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)) FROM entries",
            {"now": time.time()},
        )
        stored, live, live_bytes = 0, 0, 0
        counts: dict[str, list[int]] = {}
        for key, is_live, size in rows:
            stored += 1
            if is_live:
                live, live_bytes = live + 1, live_bytes + size
                kind = counts.setdefault(kind_of(key), [0, 0])
                kind[0], kind[1] = kind[0] + 1, kind[1] + size
        files = (self._path, self._path.with_name(self._path.name + "-wal"))
        return IndexStats(
            entries=stored,
            live_entries=live,
            live_bytes=live_bytes,
            storage_bytes=sum(p.stat().st_size for p in files if p.exists()),
            by_kind={kind: KindStats(n, size) for kind, (n, size) in sorted(counts.items())},
        )

    def live_entries(self, kind: str) -> Iterator[tuple[str, Entry]]:
        rows = self._db.execute(
            "SELECT key, value FROM entries WHERE key >= ? AND key < ? AND expires_at >= ?",
            (f"{kind}:", f"{kind};", time.time()),  # ';' sorts right after ':': every key of this kind
        )
        for key, value in rows.fetchall():
            yield key, decode_entry(value)

    def expire(self) -> int:
        cursor = self._db.execute("DELETE FROM entries WHERE expires_at < ?", (time.time(),))
        return cursor.rowcount

    def entry_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        self._db.close()
