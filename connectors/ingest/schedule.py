"""The persistent schedule of the ingest service: entries in flight, their retries, and polls.

Design: a retry is held here, in a table beside the seen entries (the connectors' SQLite
state file), not re-queued to the fetch-task topic with a not-before time. A Kafka partition
is a queue: a task that is not yet due would block every task behind it (other hosts share
the partition), or be re-produced in a loop until due. Held here, a retry costs nothing until
it is due; the poller's loop then queues it again as a normal task. Being a table, the
schedule survives restarts, and a worker makes a retry durable here before it commits the
task's offset, so a crash never loses an entry.

An entry's life: the poller queues its task, then records it ``queued`` (so later polls do
not queue it again). A worker that takes the task first counts the delivery durably
(``begin``); a worker that dies while handling it leaves the count behind, and after
``ingest.max_task_deliveries`` the task is dead-lettered instead of crash-looping. The
outcome is either final, and ``finish`` marks the entry seen and forgets it here (only after
its article or dead letter was acknowledged by Kafka), or retryable, and ``reschedule``
sets it ``waiting`` until its due time. Every poll's due time and failure streak per source
live here too, so a restart neither hammers a failing source nor forgets a backoff.

This module never talks to Kafka or the network, and never decides a delay: the caller
passes due times computed by ``RetryPolicy``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from connectors.seen_store import SEEN_SCHEMA
from connectors.state_files import open_state_file
from schemas import decode, encode
from schemas.feed_entry import FeedEntry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_entries (
    source TEXT NOT NULL, entry_key TEXT NOT NULL, entry BLOB NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0,
    queued_at REAL NOT NULL, due_at REAL, last_error TEXT,
    PRIMARY KEY (source, entry_key)
);
CREATE INDEX IF NOT EXISTS pending_due ON pending_entries (state, due_at);
CREATE TABLE IF NOT EXISTS poll_schedule (
    source TEXT PRIMARY KEY, due_at REAL NOT NULL, interval_s REAL, failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
"""
# A task that arrives more than this early for its retry is a stale duplicate, not the retry.
_EARLY_SLACK_S = 1.0


class EntryState(StrEnum):
    QUEUED = "queued"  # a task is on the topic (or being handled)
    WAITING = "waiting"  # a transient failure; queued again at due_at


def entry_key(entry: FeedEntry) -> str:
    """What 'seen' means for an entry: its id (or URL), and its update time when it has one,
    so an updated sitemap entry is fetched again as a new version."""
    key = entry.entry_id or entry.canonical_url
    return f"{key}@{entry.updated_at.isoformat()}" if entry.updated_at else key


@dataclass(frozen=True)
class Delivery:
    """A task a worker may handle now: how many fetches of it ended transiently so far, how
    many times it was handed to a worker for this attempt, and since when it is in flight."""

    attempts: int
    deliveries: int
    queued_at: float
    last_error: str | None


@dataclass(frozen=True)
class DueRetry:
    source: str
    key: str
    entry: FeedEntry
    attempts: int


@dataclass(frozen=True)
class PollState:
    due_at: float
    interval_s: float | None
    failures: int
    last_error: str | None


class Schedule:
    """The schedule in one SQLite file; thread-safe, and shared by processes through the file."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_state_file(path)
        self._db.executescript(SEEN_SCHEMA + _SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            # BEGIN IMMEDIATE: the poller and the workers' processes take turns up front.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # Entries -------------------------------------------------------------------------------

    def in_flight(self, source: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are queued or waiting for a retry (so not to be queued again)."""
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                placeholders = ",".join("?" * len(chunk))
                found.update(
                    row[0]
                    for row in self._db.execute(
                        # Only placeholders are formatted in; keys are bound parameters.
                        f"SELECT entry_key FROM pending_entries WHERE source = ? AND entry_key IN ({placeholders})",  # noqa: S608
                        (source, *chunk),
                    )
                )
        return found

    def queued(self, source: str, entries: Mapping[str, FeedEntry]) -> None:
        """Records tasks that were just published (and acknowledged)."""
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO pending_entries (source, entry_key, entry, state, queued_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(source, key, encode(entry), EntryState.QUEUED.value, now) for key, entry in entries.items()],
            )

    def begin(self, entry: FeedEntry, key: str) -> Delivery | str:
        """Counts one delivery of ``entry``'s task, durably, before it is handled; or says why
        the task is not to be handled (already final, or a stale copy of a retry not yet due)."""
        source = entry.source_name
        now = time.time()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM seen_entries WHERE source = ? AND entry_key = ?", (source, key)).fetchone():
                return "already final"
            row = db.execute(
                "SELECT state, attempts, deliveries, queued_at, due_at, last_error FROM pending_entries"
                " WHERE source = ? AND entry_key = ?",
                (source, key),
            ).fetchone()
            if row is None:
                # Published but not yet recorded (the poller records after the acknowledgement).
                db.execute(
                    "INSERT INTO pending_entries (source, entry_key, entry, state, deliveries, queued_at)"
                    " VALUES (?, ?, ?, ?, 1, ?)",
                    (source, key, encode(entry), EntryState.QUEUED.value, now),
                )
                return Delivery(0, 1, now, None)
            state, attempts, deliveries, queued_at, due_at, last_error = row
            if state == EntryState.WAITING.value and due_at is not None and due_at > now + _EARLY_SLACK_S:
                return f"a copy of a retry due in {due_at - now:.0f}s"
            db.execute(
                "UPDATE pending_entries SET deliveries = deliveries + 1 WHERE source = ? AND entry_key = ?",
                (source, key),
            )
            return Delivery(attempts, deliveries + 1, queued_at, last_error)

    def forget_delivery(self, source: str, key: str) -> None:
        """Takes back one delivery: the worker lived, only Kafka or this file failed it."""
        with self._transaction() as db:
            db.execute(
                "UPDATE pending_entries SET deliveries = max(0, deliveries - 1) WHERE source = ? AND entry_key = ?",
                (source, key),
            )

    def reschedule(self, entry: FeedEntry, key: str, *, attempts: int, due_at: float, error: str) -> None:
        """A transient failure: the entry waits until ``due_at``, then is queued again."""
        with self._transaction() as db:
            db.execute(
                "UPDATE pending_entries SET state = ?, attempts = ?, deliveries = 0, due_at = ?, last_error = ?"
                " WHERE source = ? AND entry_key = ?",
                (EntryState.WAITING.value, attempts, due_at, error, entry.source_name, key),
            )

    def finish(self, source: str, key: str) -> None:
        """The entry's outcome is final and acknowledged: it is seen, and no longer in flight."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO seen_entries (source, entry_key, seen_at) VALUES (?, ?, ?)",
                (source, key, time.time()),
            )
            db.execute("DELETE FROM pending_entries WHERE source = ? AND entry_key = ?", (source, key))

    def due_retries(self, now: float, limit: int = 500) -> list[DueRetry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT source, entry_key, entry, attempts FROM pending_entries"
                " WHERE state = ? AND due_at <= ? ORDER BY due_at LIMIT ?",
                (EntryState.WAITING.value, now, limit),
            ).fetchall()
        return [DueRetry(source, key, decode(value, FeedEntry), attempts) for source, key, value, attempts in rows]

    def released(self, retries: Sequence[DueRetry]) -> None:
        """Their tasks are on the topic again. Guarded by the attempt count: a worker that
        already handled the new task (and rescheduled it) is not overwritten."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE pending_entries SET state = ? WHERE source = ? AND entry_key = ? AND state = ?"
                " AND attempts = ?",
                [(EntryState.QUEUED.value, r.source, r.key, EntryState.WAITING.value, r.attempts) for r in retries],
            )

    def requeue_orphans(self, now: float) -> int:
        """Entries recorded in flight whose task is no longer on the topic (every task was
        committed, yet they have no final outcome) are made due again; returns how many."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE pending_entries SET state = ?, due_at = ? WHERE state = ?",
                (EntryState.WAITING.value, now, EntryState.QUEUED.value),
            )
            return cursor.rowcount

    def pending(self) -> int:
        """Entries whose outcome is not final yet (queued or waiting)."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM pending_entries").fetchone()[0])

    def waiting(self) -> int:
        with self._lock:
            return int(
                self._db.execute(
                    "SELECT count(*) FROM pending_entries WHERE state = ?", (EntryState.WAITING.value,)
                ).fetchone()[0]
            )

    def next_retry_at(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT min(due_at) FROM pending_entries WHERE state = ?", (EntryState.WAITING.value,)
            ).fetchone()
        return row[0] if row else None

    # Polls ---------------------------------------------------------------------------------

    def polls_backing_off(self) -> int:
        """Sources whose last poll failed: they are polled again after a backoff."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM poll_schedule WHERE failures > 0").fetchone()[0])

    def poll_state(self, source: str) -> PollState | None:
        with self._lock:
            row = self._db.execute(
                "SELECT due_at, interval_s, failures, last_error FROM poll_schedule WHERE source = ?", (source,)
            ).fetchone()
        return PollState(*row) if row else None

    def save_poll_state(self, source: str, state: PollState) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO poll_schedule (source, due_at, interval_s, failures, last_error) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (source) DO UPDATE SET due_at = excluded.due_at, interval_s = excluded.interval_s,"
                " failures = excluded.failures, last_error = excluded.last_error",
                (source, state.due_at, state.interval_s, state.failures, state.last_error),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
