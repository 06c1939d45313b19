"""The SQLite ledger beside an append-only file sink (JSON Lines, Parquet): which article ids
its files already hold, and the lock that lets one writer at a time change files and ledger.

Each sink keeps its own ledger schema; both record written ids in a table
``written (article_id TEXT PRIMARY KEY, ...)``, which is all this module reads.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

# SQLite caps the bound parameters of one statement (999 before version 3.32).
_IDS_PER_QUERY = 500


def already_written(ledger: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` that the ledger's ``written`` table holds."""
    known: set[str] = set()
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        known.update(
            row[0]
            for row in ledger.execute(
                # Only placeholders are formatted into the SQL; the ids are bound parameters.
                f"SELECT article_id FROM written WHERE article_id IN ({','.join('?' * len(chunk))})",  # noqa: S608
                chunk,
            )
        )
    return known


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing).

    It serialises writers in several processes; the ledger's own transactions only make
    what it records change together.
    """
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
