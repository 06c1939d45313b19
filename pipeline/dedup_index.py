"""Dedup memory that outlives a batch: who first claimed each identity key.

Beam state does not survive a micro-batch (or a redeploy on a streaming runner), so the
pipeline remembers which article owns each key (its id, its content fingerprint) here.
A claim is atomic insert-if-absent: of two workers claiming one key at the same moment,
exactly one wins and both learn who. A claim carries the claimant's revision token, so
re-processing the same record after a crash finds its own claim and is not mistaken for
a copy of itself.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Claim:
    layer: str
    key: str
    article_id: str
    revision: str


class DedupIndex(Protocol):
    def claim_all(self, claims: Sequence[Claim]) -> list[Claim]:
        """Claim every key not yet owned; return the owner of each key, in order."""

    def expire(self, older_than_s: float) -> int:
        """Forget claims older than the horizon; returns how many were dropped."""

    def close(self) -> None: ...


class SqliteDedupIndex:
    """The embedded default: one SQLite file, safe for several processes on one machine."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS claims ("
            " layer TEXT NOT NULL, key TEXT NOT NULL, article_id TEXT NOT NULL,"
            " revision TEXT NOT NULL, claimed_at REAL NOT NULL, PRIMARY KEY (layer, key))"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS claims_by_age ON claims (claimed_at)")

    def claim_all(self, claims: Sequence[Claim]) -> list[Claim]:
        now = time.time()
        owners = []
        # One write transaction per call: atomic against other processes, one fsync per batch.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for claim in claims:
                self._db.execute(
                    "INSERT OR IGNORE INTO claims (layer, key, article_id, revision, claimed_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (claim.layer, claim.key, claim.article_id, claim.revision, now),
                )
                article_id, revision = self._db.execute(
                    "SELECT article_id, revision FROM claims WHERE layer = ? AND key = ?", (claim.layer, claim.key)
                ).fetchone()
                owners.append(Claim(claim.layer, claim.key, article_id, revision))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return owners

    def expire(self, older_than_s: float) -> int:
        cursor = self._db.execute("DELETE FROM claims WHERE claimed_at < ?", (time.time() - older_than_s,))
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()
