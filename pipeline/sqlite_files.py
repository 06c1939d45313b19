"""Opening a SQLite file that several workers share: the embedded dedup index, the SQLite
sink, and the ledgers of the JSON Lines and Parquet sinks."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 60.0


def open_shared(path: Path, schema: str) -> sqlite3.Connection:
    """A WAL-mode connection to ``path`` with ``schema`` (idempotent DDL) applied, waiting out other openers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Runners may call setup, bundles and teardown on different threads; one DoFn instance
    # still serves one bundle at a time, so sharing the connection is safe.
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    deadline, pause = time.monotonic() + BUSY_TIMEOUT_S, 0.01
    while True:
        try:
            # Switching a file to WAL needs it to itself, and SQLite fails at once rather than
            # waiting, so two workers opening a new file together must retry here.
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
            return db
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction holding the write lock from its start, committed if the block succeeds.

    ``BEGIN IMMEDIATE`` makes other writers wait up front, so nothing read inside the block
    changes before the commit. ``db`` must be in autocommit mode (``isolation_level=None``).
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
