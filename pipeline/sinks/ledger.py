"""The SQLite ledger beside an append-only file sink (JSON Lines, Parquet): which article ids
its files already hold, and the lock that lets one writer at a time change files and ledger.

Each sink keeps its own ledger schema; both record written ids in a table
``written (article_id TEXT PRIMARY KEY, ...)``, which is all this module reads.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def already_written(ledger: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` that the ledger's ``written`` table holds."""
    # All ids in one bound JSON array: no cap on bound parameters to chunk around, and no
    # SQL built from the number of ids.
    rows = ledger.execute(
        "SELECT article_id FROM written WHERE article_id IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),)
    )
    return {row[0] for row in rows}


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
