"""The embedded default sink: a SQLite database a person can query, upserted by article id."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from pipeline.sinks.base import Sink
from schemas import EnrichedArticle, encode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    article_id TEXT PRIMARY KEY,
    canonical_url TEXT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    language TEXT,
    published_at TEXT,
    fetched_at TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    source_name TEXT NOT NULL,
    word_count INTEGER,
    content_fingerprint TEXT NOT NULL,
    record TEXT NOT NULL,
    written_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS articles_by_published ON articles (published_at);
"""

_UPSERT = """
INSERT INTO articles (article_id, canonical_url, title, body, language, published_at, fetched_at,
                      source_kind, source_name, word_count, content_fingerprint, record)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (article_id) DO UPDATE SET
    canonical_url = excluded.canonical_url, title = excluded.title, body = excluded.body,
    language = excluded.language, published_at = excluded.published_at, fetched_at = excluded.fetched_at,
    source_kind = excluded.source_kind, source_name = excluded.source_name, word_count = excluded.word_count,
    content_fingerprint = excluded.content_fingerprint, record = excluded.record,
    written_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
"""


class SqliteSink(Sink):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def write(self, batch: Sequence[EnrichedArticle]) -> None:
        assert self._db is not None, "open() before write()"
        rows = [
            (
                a.article_id,
                a.canonical_url,
                a.title,
                a.body,
                a.detected_language.code if a.detected_language else a.language,
                a.published_at.isoformat() if a.published_at else None,
                a.fetched_at.isoformat(),
                a.source.kind.value,
                a.source.name,
                a.word_count,
                a.content_fingerprint,
                encode(a).decode("utf-8"),
            )
            for a in batch
        ]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(_UPSERT, rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_db": None}
