"""What the connectors remember between runs: entries already published, feed validators,
and each feed's adaptive poll interval. SQLite by default, one file per deployment.

Entries are marked seen only once their outcome is final and their article (or dead letter)
was acknowledged by Kafka, so a crash in between re-publishes rather than loses; the
pipeline's dedup drops the repeat. Entries in flight and their retries are in the ingest
schedule (``connectors.ingest.schedule``), in the same file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from connectors.http.outcomes import Validators
from connectors.state_files import open_state_file

# Shared with the ingest schedule, which marks entries seen in the same transaction as it
# forgets them (connectors.ingest.schedule).
SEEN_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_entries (
    source TEXT NOT NULL, entry_key TEXT NOT NULL, seen_at REAL NOT NULL,
    PRIMARY KEY (source, entry_key)
);
"""
_SCHEMA = (
    SEEN_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS feed_state (
    url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT,
    poll_interval_s REAL, last_polled_at REAL
);
"""
)


@dataclass(frozen=True)
class FeedState:
    validators: Validators
    poll_interval_s: float | None
    last_polled_at: float | None


class SeenStore:
    def __init__(self, path: Path) -> None:
        self._db = open_state_file(path)
        self._db.executescript(_SCHEMA)

    def unseen(self, source: str, entry_keys: Iterable[str]) -> list[str]:
        keys = list(dict.fromkeys(entry_keys))
        # All keys in one bound JSON array: no cap on bound parameters to chunk around.
        rows = self._db.execute(
            "SELECT entry_key FROM seen_entries WHERE source = ? AND entry_key IN (SELECT value FROM json_each(?))",
            (source, json.dumps(keys)),
        )
        seen = {row[0] for row in rows}
        return [k for k in keys if k not in seen]

    def mark_seen(self, source: str, entry_keys: Iterable[str]) -> None:
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO seen_entries (source, entry_key, seen_at) VALUES (?, ?, ?)",
                [(source, key, now) for key in entry_keys],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def feed_state(self, url: str) -> FeedState:
        row = self._db.execute(
            "SELECT etag, last_modified, poll_interval_s, last_polled_at FROM feed_state WHERE url = ?",
            (url,),
        ).fetchone()
        if row is None:
            return FeedState(Validators(), None, None)
        return FeedState(Validators(row[0], row[1]), row[2], row[3])

    def save_feed_state(self, url: str, state: FeedState) -> None:
        self._db.execute(
            # Files written before last_changed_at was dropped keep that column, unread and NULL-able.
            "INSERT INTO feed_state (url, etag, last_modified, poll_interval_s, last_polled_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,"
            " last_modified = excluded.last_modified, poll_interval_s = excluded.poll_interval_s,"
            " last_polled_at = excluded.last_polled_at",
            (
                url,
                state.validators.etag,
                state.validators.last_modified,
                state.poll_interval_s,
                state.last_polled_at,
            ),
        )

    def close(self) -> None:
        self._db.close()
