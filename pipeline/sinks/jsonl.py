"""A JSON Lines file of enriched articles, one line per article id, safe against crashes.

Appending is not idempotent by itself, so beside the file a small SQLite ledger records
which article ids the file holds and the file length after the last complete write. A
write first cuts off any tail left by a crash after that length, then appends only ids
the ledger lacks, then records ids and length in one transaction. A process killed at
any point therefore leaves neither a lost line nor a doubled one once writing resumes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pipeline.dependencies import probe_directory
from pipeline.sinks.base import Sink
from pipeline.sinks.ledger import already_written, exclusive_lock
from pipeline.sqlite_files import open_shared, write_transaction
from schemas import EnrichedArticle, encode

_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS written (article_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS file_state (id INTEGER PRIMARY KEY CHECK (id = 1), length INTEGER);
INSERT OR IGNORE INTO file_state (id, length) VALUES (1, 0);
"""


class JsonLinesSink(Sink):
    name = "jsonl"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ledger_path = path.with_name(path.name + ".ledger.sqlite3")
        self._ledger: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ledger = open_shared(self.ledger_path, _LEDGER_SCHEMA)

    @contextmanager
    def _exclusive(self) -> Iterator[sqlite3.Connection]:
        assert self._ledger is not None, "open() before write()"
        # The SQLite transaction in ``write`` makes the recorded length and ids change together.
        with exclusive_lock(self.ledger_path.with_suffix(".lock")):
            yield self._ledger

    def write(self, batch: Sequence[EnrichedArticle]) -> None:
        with self._exclusive() as ledger:
            (committed_length,) = ledger.execute("SELECT length FROM file_state WHERE id = 1").fetchone()
            known = already_written(ledger, list(dict.fromkeys(a.article_id for a in batch)))
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
            with write_transaction(ledger):
                ledger.executemany("INSERT INTO written (article_id) VALUES (?)", [(i,) for i in fresh])
                ledger.execute("UPDATE file_state SET length = ? WHERE id = 1", (new_length,))

    def probe(self) -> None:
        probe_directory(self.path.parent, check=self.check)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_ledger": None}
