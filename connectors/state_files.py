"""Opening the connectors' SQLite files (seen entries, the ingest schedule, the host ledger).

Several processes open them at once (the poller, fetch workers, a readiness probe), so each
is switched to WAL, where readers and one writer do not block each other. Switching needs a
moment alone with the file, which SQLite does not wait for, so it is retried here until the
others let go; never longer than the connection's own busy timeout.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

# How long any statement waits for another process's lock before it fails.
BUSY_TIMEOUT_S = 60.0


def open_state_file(path: Path) -> sqlite3.Connection:
    """An autocommit connection to ``path`` in WAL mode, shareable between threads (callers lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.05)
