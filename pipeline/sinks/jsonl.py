"""A JSON Lines file of enriched articles, one line per article id, safe against crashes.

Appending is not idempotent by itself, so beside the file a small SQLite ledger records
which article ids the file holds and the file length after the last complete write. A
write first cuts off any tail left by a crash after that length, then appends only ids
the ledger lacks, then records ids and length in one transaction. A process killed at
any point therefore leaves neither a lost line nor a doubled one once writing resumes.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pipeline.sinks.base import Sink
from schemas import EnrichedArticle, encode


class JsonLinesSink(Sink):
    name = "jsonl"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ledger_path = path.with_name(path.name + ".ledger.sqlite3")
        self._ledger: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Runners may call setup, bundles and teardown on different threads; one DoFn
        # instance still serves one bundle at a time, so sharing the connection is safe.
        self._ledger = sqlite3.connect(self.ledger_path, timeout=60, isolation_level=None, check_same_thread=False)
        self._ledger.execute("PRAGMA journal_mode=WAL")
        self._ledger.execute("CREATE TABLE IF NOT EXISTS written (article_id TEXT PRIMARY KEY)")
        self._ledger.execute(
            "CREATE TABLE IF NOT EXISTS file_state (id INTEGER PRIMARY KEY CHECK (id = 1), length INTEGER)"
        )
        self._ledger.execute("INSERT OR IGNORE INTO file_state (id, length) VALUES (1, 0)")

    @contextmanager
    def _exclusive(self) -> Iterator[sqlite3.Connection]:
        assert self._ledger is not None, "open() before write()"
        # The file lock serialises writers in several processes; the SQLite transaction
        # makes the recorded length and ids change together.
        with open(self.ledger_path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self._ledger
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, batch: Sequence[EnrichedArticle]) -> None:
        with self._exclusive() as ledger:
            (committed_length,) = ledger.execute("SELECT length FROM file_state WHERE id = 1").fetchone()
            ids = list(dict.fromkeys(a.article_id for a in batch))
            known = {
                row[0]
                for chunk in _chunks(ids, 500)
                for row in ledger.execute(
                    # Only placeholders are formatted into the SQL; the ids are bound parameters.
                    f"SELECT article_id FROM written WHERE article_id IN ({','.join('?' * len(chunk))})",  # noqa: S608
                    chunk,
                )
            }
            fresh: dict[str, EnrichedArticle] = {}
            for article in batch:
                if article.article_id not in known:
                    fresh.setdefault(article.article_id, article)
            with open(self.path, "ab") as out:
                if out.tell() < committed_length:
                    raise RuntimeError(
                        f"{self.path} is shorter ({out.tell()} bytes) than its ledger records ({committed_length}); "
                        f"it was changed outside newswire: move it away together with {self.ledger_path.name}"
                    )
                if out.tell() > committed_length:
                    out.truncate(committed_length)  # a crash left an unrecorded tail
                    out.seek(committed_length)
                if not fresh:
                    return
                out.write(b"".join(encode(a) + b"\n" for a in fresh.values()))
                out.flush()
                os.fsync(out.fileno())
                new_length = out.tell()
            ledger.execute("BEGIN IMMEDIATE")
            ledger.executemany("INSERT INTO written (article_id) VALUES (?)", [(i,) for i in fresh])
            ledger.execute("UPDATE file_state SET length = ? WHERE id = 1", (new_length,))
            ledger.execute("COMMIT")

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_ledger": None}


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
