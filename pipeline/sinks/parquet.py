"""Date-partitioned Parquet files of enriched articles, for data lakes; one record per id.

Layout (Hive-style, readable by pyarrow, DuckDB, Spark, Trino as one dataset)::

    <root>/date=2026-03-14/part-20260314T101500123456Z-3f9a1c2e.parquet
    <root>/_newswire_ledger.sqlite3      which ids are written, and where; skipped by readers
    <root>/date=.../.part-....parquet.tmp only during a write, or left by a crash

The date is the UTC day of ``published_at``, or of ``fetched_at`` when the source gave none.

What a reader can rely on:

* Each article id is in exactly one file, once. A replay, or a micro-batch re-run after a
  crash, writes nothing new for ids the ledger already holds: the **first** written
  version of an article stays, later versions are not rewritten here (the enriched topic
  and the SQL sinks carry updates). Equal ids within one batch: the first one wins.
* Every file a reader sees is complete. A file is written under a hidden temporary name,
  fsynced, recorded in the ledger, and only then renamed into place (rename is atomic).
* Files roll by size and age. A partition has at most one *open* file; a write that adds
  rows to it rewrites it in full under the same name (readers see the old or the new
  file, never both, never a torn one). It is sealed, and never changed again, once it
  reaches ``roll_bytes`` or is ``roll_interval_s`` old; the ledger's ``files.sealed``
  column tells which files are final. The price is write amplification: an open file is
  rewritten once per batch that reaches its partition, so ``roll_bytes`` trades file
  size against rewrite cost (the throughput benchmark measures it).

Crash safety: a process killed before the ledger commit leaves a hidden temporary file,
deleted at the next ``open``, and ids the ledger lacks, so the re-run writes them. Killed
after the commit but before the rename, the ledger marks the file *pending* and the next
write or ``open`` finishes the rename from the fsynced temporary file. Writers in several
processes serialise on a file lock beside the ledger.

Beam's ``WriteToParquet`` is not used: it writes fresh shards per run and bundle, so a
replay would add a second copy of every article. This module must never write a visible
file that is not complete, never write an id the ledger holds, and works only on a local
(POSIX) file system with atomic rename and ``flock``, not on object stores. If the ledger
is deleted while the files stay, the next replay writes every article again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from pipeline.dependencies import probe_directory
from pipeline.sinks.base import Sink
from pipeline.sinks.ledger import already_written, exclusive_lock
from pipeline.sqlite_files import open_shared, write_transaction
from schemas import EnrichedArticle, encode

LEDGER_NAME = "_newswire_ledger.sqlite3"
Compression = Literal["zstd", "snappy", "gzip", "none"]

ARTICLE_SCHEMA = pa.schema(
    [
        pa.field("article_id", pa.string(), nullable=False),
        pa.field("canonical_url", pa.string()),
        pa.field("title", pa.string(), nullable=False),
        pa.field("body", pa.string(), nullable=False),
        pa.field("language", pa.string()),
        pa.field("published_at", pa.timestamp("us", tz="UTC")),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source_kind", pa.string(), nullable=False),
        pa.field("source_name", pa.string(), nullable=False),
        pa.field("word_count", pa.int32()),
        pa.field("content_fingerprint", pa.string(), nullable=False),
        pa.field("story_id", pa.string()),
        pa.field("keywords", pa.list_(pa.string())),
        pa.field("country_codes", pa.list_(pa.string())),
        pa.field("record", pa.string(), nullable=False, metadata={"format": "enriched-article JSON"}),
    ]
)

_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    name TEXT PRIMARY KEY,          -- path relative to the root
    partition TEXT NOT NULL,        -- date=YYYY-MM-DD
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,       -- unix seconds, for rolling by age
    sealed INTEGER NOT NULL DEFAULT 0,
    pending INTEGER NOT NULL DEFAULT 0  -- recorded, but the rename into place may not have happened
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_file_per_partition ON files (partition) WHERE sealed = 0;
CREATE TABLE IF NOT EXISTS written (article_id TEXT PRIMARY KEY, file TEXT NOT NULL);
"""


def partition_of(article: EnrichedArticle) -> str:
    """The Hive partition directory of ``article``: the UTC day it was published, or fetched."""
    moment = article.published_at or article.fetched_at
    day: date = moment.astimezone(UTC).date()
    return f"date={day.isoformat()}"


def articles_table(articles: Sequence[EnrichedArticle]) -> pa.Table:
    columns: dict[str, list[object]] = {field.name: [] for field in ARTICLE_SCHEMA}
    for a in articles:
        columns["article_id"].append(a.article_id)
        columns["canonical_url"].append(a.canonical_url)
        columns["title"].append(a.title)
        columns["body"].append(a.body)
        columns["language"].append(a.effective_language)
        columns["published_at"].append(a.published_at)
        columns["fetched_at"].append(a.fetched_at)
        columns["source_kind"].append(a.source.kind.value)
        columns["source_name"].append(a.source.name)
        columns["word_count"].append(a.word_count)
        columns["content_fingerprint"].append(a.content_fingerprint)
        columns["story_id"].append(a.story_id)
        columns["keywords"].append(list(a.keywords))
        columns["country_codes"].append([str(c) for c in a.country_codes])
        columns["record"].append(encode(a).decode("utf-8"))
    return pa.table(columns, schema=ARTICLE_SCHEMA)


def file_name(partition: str, first_ids: Sequence[str], created: datetime) -> str:
    """A new file's path under the root: sortable by creation time, unique by its first ids."""
    digest = hashlib.sha256("\n".join(sorted(first_ids)).encode()).hexdigest()[:8]
    return f"{partition}/part-{created.strftime('%Y%m%dT%H%M%S%fZ')}-{digest}.parquet"


def temporary_path(final: Path) -> Path:
    # Hidden (dot prefix) so that dataset readers skip it, and beside the final file so
    # that the rename stays within one file system and is atomic.
    return final.with_name(f".{final.name}.tmp")


@dataclass(frozen=True)
class OpenFile:
    name: str
    rows: int
    bytes: int
    created_at: float


class ParquetSink(Sink):
    name = "parquet"

    def __init__(
        self,
        root: Path,
        *,
        roll_bytes: int = 32 * 2**20,
        roll_interval_s: float = 3600.0,
        compression: Compression = "zstd",
    ) -> None:
        if roll_bytes < 1:
            raise ValueError("roll_bytes must be positive")
        if roll_interval_s <= 0:
            raise ValueError("roll_interval_s must be positive")
        if compression not in ("zstd", "snappy", "gzip", "none"):
            raise ValueError(f"unknown Parquet compression {compression!r}: use zstd, snappy, gzip or none")
        self.root = root
        self.roll_bytes = roll_bytes
        self.roll_interval_s = roll_interval_s
        self.compression = compression
        self.ledger_path = root / LEDGER_NAME
        self._ledger: sqlite3.Connection | None = None

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._ledger = open_shared(self.ledger_path, _LEDGER_SCHEMA)
        with self._exclusive() as ledger:
            self._finish_pending(ledger)
            self._remove_orphans()

    @contextmanager
    def _exclusive(self) -> Iterator[sqlite3.Connection]:
        assert self._ledger is not None, "open() before write()"
        with exclusive_lock(self.root / "_newswire_ledger.lock"):
            yield self._ledger

    def write(self, batch: Sequence[EnrichedArticle]) -> None:
        with self._exclusive() as ledger:
            self._finish_pending(ledger)
            fresh = self._unwritten(ledger, batch)
            by_partition: dict[str, list[EnrichedArticle]] = {}
            for article in fresh:
                by_partition.setdefault(partition_of(article), []).append(article)
            for partition in sorted(by_partition):
                self._write_partition(ledger, partition, by_partition[partition])

    def _unwritten(self, ledger: sqlite3.Connection, batch: Sequence[EnrichedArticle]) -> list[EnrichedArticle]:
        first: dict[str, EnrichedArticle] = {}
        for article in batch:
            first.setdefault(article.article_id, article)
        known = already_written(ledger, list(first))
        return [a for i, a in first.items() if i not in known]

    def _open_file(self, ledger: sqlite3.Connection, partition: str) -> OpenFile | None:
        row = ledger.execute(
            "SELECT name, rows, bytes, created_at FROM files WHERE partition = ? AND sealed = 0", (partition,)
        ).fetchone()
        return OpenFile(*row) if row else None

    def _write_partition(self, ledger: sqlite3.Connection, partition: str, articles: list[EnrichedArticle]) -> None:
        table = articles_table(articles)
        current = self._open_file(ledger, partition)
        if current is not None and time.time() - current.created_at >= self.roll_interval_s:
            ledger.execute("UPDATE files SET sealed = 1 WHERE name = ?", (current.name,))
            current = None
        if current is None:
            created = datetime.now(UTC)
            name = file_name(partition, [a.article_id for a in articles], created)
            created_at = created.timestamp()
        else:
            name, created_at = current.name, current.created_at
            final = self.root / name
            if not final.exists():
                raise RuntimeError(
                    f"{final} is in the Parquet ledger but missing on disk; it was removed outside newswire: "
                    f"restore it, or move the whole directory {self.root} away to start a new dataset"
                )
            table = pa.concat_tables([pq.read_table(final, schema=ARTICLE_SCHEMA), table])
        final = self.root / name
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_path(final)
        pq.write_table(table, temporary, compression=self.compression)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        size = temporary.stat().st_size
        with write_transaction(ledger):
            ledger.execute(
                "INSERT INTO files (name, partition, rows, bytes, created_at, sealed, pending)"
                " VALUES (?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (name) DO UPDATE SET rows = excluded.rows, bytes = excluded.bytes,"
                " sealed = excluded.sealed, pending = 1",
                (name, partition, table.num_rows, size, created_at, int(size >= self.roll_bytes)),
            )
            ledger.executemany(
                "INSERT INTO written (article_id, file) VALUES (?, ?)", [(a.article_id, name) for a in articles]
            )
        self._publish(ledger, name)

    def _publish(self, ledger: sqlite3.Connection, name: str) -> None:
        final = self.root / name
        os.replace(temporary_path(final), final)
        _fsync_directory(final.parent)
        ledger.execute("UPDATE files SET pending = 0 WHERE name = ?", (name,))

    def _finish_pending(self, ledger: sqlite3.Connection) -> None:
        """Complete renames a crash interrupted after the ledger recorded them."""
        for (name,) in ledger.execute("SELECT name FROM files WHERE pending = 1").fetchall():
            if temporary_path(self.root / name).exists():
                self._publish(ledger, name)
            else:  # renamed before the crash; only the flag was not cleared
                ledger.execute("UPDATE files SET pending = 0 WHERE name = ?", (name,))

    def _remove_orphans(self) -> None:
        """Temporary files no pending ledger entry claims (run after ``_finish_pending``):
        writes that died before their commit."""
        for temporary in self.root.glob("date=*/.part-*.parquet.tmp"):
            temporary.unlink(missing_ok=True)

    def probe(self) -> None:
        probe_directory(self.root, check=self.check)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_ledger": None}


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
