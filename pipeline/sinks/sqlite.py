"""The embedded default sink: a SQLite database a person can query, upserted by article id.

A batch is written in one transaction (committed before the offsets are, see
``sinks.base``), and each change reaches the full-text index through the table's own
triggers. Durability is SQLite's WAL with ``synchronous=FULL`` (the default): a committed
batch survives a power loss, since the read-back after a crash trusts what is here. This
module never writes an article row without its full-text entry.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.dependencies import probe_directory
from pipeline.sinks.base import Sink
from pipeline.sqlite_files import open_shared, write_transaction
from schemas import EnrichedArticle, decode, encode

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
-- Articles dedup demoted after publishing them: deleted, and kept out if written again.
CREATE TABLE IF NOT EXISTS withdrawn (
    article_id TEXT PRIMARY KEY,
    withdrawn_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- Full-text index over title and body, kept in step with the table by triggers so that
-- every upsert path (insert, update on conflict) indexes exactly the stored text.
CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(
    title, body, content='articles', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;
CREATE TRIGGER IF NOT EXISTS articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, body) VALUES ('delete', old.rowid, old.title, old.body);
END;
CREATE TRIGGER IF NOT EXISTS articles_fts_update AFTER UPDATE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, body) VALUES ('delete', old.rowid, old.title, old.body);
    INSERT INTO articles_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;
"""

_COLUMNS = """article_id, canonical_url, title, body, language, published_at, fetched_at,
    source_kind, source_name, word_count, content_fingerprint, record"""

# A batch is staged in a temporary table (this connection's alone, no triggers) and upserted
# by one statement. Row by row, each upsert is a statement of its own whose triggers open a
# savepoint, and FTS5 flushes its pending terms to a new segment at every savepoint: one
# segment per article, merged again and again. In one statement FTS5 keeps the batch's terms
# in memory (up to _FTS_PENDING_BYTES) and writes few, large segments; the rows, the triggers
# and so the index are the same.
_PENDING = f"CREATE TEMP TABLE IF NOT EXISTS pending_articles ({_COLUMNS})"
_STAGE = f"INSERT INTO temp.pending_articles ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
# How much FTS5 buffers before writing a segment; a batch of 500 news articles needs ~8 MiB.
_FTS_PENDING_BYTES = 8 << 20

_UPSERT = f"""
INSERT INTO articles ({_COLUMNS})
SELECT {_COLUMNS} FROM temp.pending_articles WHERE true ORDER BY rowid
ON CONFLICT (article_id) DO UPDATE SET
    canonical_url = excluded.canonical_url, title = excluded.title, body = excluded.body,
    language = excluded.language, published_at = excluded.published_at, fetched_at = excluded.fetched_at,
    source_kind = excluded.source_kind, source_name = excluded.source_name, word_count = excluded.word_count,
    content_fingerprint = excluded.content_fingerprint, record = excluded.record,
    written_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
"""  # noqa: S608 (only the fixed column list is formatted in)


_DELETE_IF_WITHDRAWN = (
    "DELETE FROM articles WHERE article_id IN (SELECT article_id FROM temp.pending_articles)"
    " AND article_id IN (SELECT article_id FROM withdrawn)"
)


class SqliteSink(Sink):
    name = "sqlite"
    withdraws = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self._db = open_shared(
            self.path,
            f"{_SCHEMA}\nINSERT INTO articles_fts (articles_fts, rank) VALUES ('hashsize', {_FTS_PENDING_BYTES});",
        )
        self._db.execute(_PENDING)

    def write(self, batch: Sequence[EnrichedArticle]) -> None:
        assert self._db is not None, "open() before write()"
        rows = [
            (
                a.article_id,
                a.canonical_url,
                a.title,
                a.body,
                a.effective_language,
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
        with write_transaction(self._db) as db:
            db.execute("DELETE FROM temp.pending_articles")
            db.executemany(_STAGE, rows)
            # Staged in batch order and upserted in it: an article id twice in a batch ends as the last.
            db.execute(_UPSERT)
            # A withdrawal may have run first (the two stages run in parallel): it stands.
            db.execute(_DELETE_IF_WITHDRAWN)
            db.execute("DELETE FROM temp.pending_articles")

    def withdraw(self, article_ids: Sequence[str]) -> None:
        assert self._db is not None, "open() before withdraw()"
        with write_transaction(self._db) as db:
            db.executemany("INSERT OR IGNORE INTO withdrawn (article_id) VALUES (?)", [(i,) for i in article_ids])
            # One statement, not one per id: the full-text index flushes once (see _PENDING).
            db.execute(
                "DELETE FROM articles WHERE article_id IN (SELECT value FROM json_each(?))", (json.dumps(article_ids),)
            )

    def probe(self) -> None:
        probe_directory(self.path.parent, check=self.check)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_db": None}


def stored_article(path: Path, article_id: str) -> EnrichedArticle | None:
    """The article the sink holds under ``article_id`` (read-only), or ``None``."""
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT record FROM articles WHERE article_id = ?", (article_id,)).fetchone()
    return decode(row[0].encode(), EnrichedArticle) if row else None


@dataclass(frozen=True)
class SearchHit:
    article_id: str
    title: str
    language: str | None
    source_name: str
    published_at: str | None
    snippet: str


def search_articles(
    path: Path,
    query: str,
    *,
    language: str | None = None,
    source: str | None = None,
    since: str | None = None,
    limit: int = 20,
) -> list[SearchHit]:
    """Best matches first. Every word of ``query`` must occur (FTS5 AND); words are quoted,
    so punctuation in a query is never FTS syntax."""
    words = [w for w in query.replace('"', " ").split() if w]
    if not words:
        return []
    match = " ".join(f'"{w}"' for w in words)
    clauses, parameters = ["articles_fts MATCH ?"], [match]
    for column, value in (("a.language", language), ("a.source_name", source)):
        if value:
            clauses.append(f"{column} = ?")
            parameters.append(value)
    if since:
        clauses.append("coalesce(a.published_at, a.fetched_at) >= ?")
        parameters.append(since)
    # Only fixed column clauses are formatted in; every value is a bound parameter.
    sql = (
        "SELECT a.article_id, a.title, a.language, a.source_name, a.published_at,"  # noqa: S608
        " snippet(articles_fts, 1, '[', ']', ' ... ', 12)"
        " FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid"
        f" WHERE {' AND '.join(clauses)} ORDER BY bm25(articles_fts) LIMIT ?"
    )
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return [SearchHit(*row) for row in db.execute(sql, (*parameters, limit))]


# --- reads for the console (read-only connections; every value a bound parameter) -------------


@dataclass(frozen=True)
class StoredArticle:
    article_id: str
    title: str
    language: str | None
    source_name: str
    published_at: str | None
    fetched_at: str
    written_at: str
    record: str  # the EnrichedArticle as JSON, as written


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


_STORED = "article_id, title, language, source_name, published_at, fetched_at, written_at, record"


def recent_articles(path: Path, *, limit: int = 50, source: str | None = None) -> list[StoredArticle]:
    """Newest written first."""
    where, parameters = ("WHERE source_name = ?", [source]) if source else ("", [])
    sql = f"SELECT {_STORED} FROM articles {where} ORDER BY written_at DESC, article_id LIMIT ?"  # noqa: S608
    with _read_only(path) as db:
        return [StoredArticle(*row) for row in db.execute(sql, (*parameters, limit))]


def stored_row(path: Path, article_id: str) -> StoredArticle | None:
    with _read_only(path) as db:
        row = db.execute(f"SELECT {_STORED} FROM articles WHERE article_id = ?", (article_id,)).fetchone()  # noqa: S608
    return StoredArticle(*row) if row else None


def story_articles(path: Path, story_id: str, *, limit: int = 50) -> list[StoredArticle]:
    """The articles that share ``story_id``, newest first."""
    sql = (
        f"SELECT {_STORED} FROM articles WHERE json_extract(record, '$.story_id') = ?"  # noqa: S608
        " ORDER BY written_at DESC LIMIT ?"
    )
    with _read_only(path) as db:
        return [StoredArticle(*row) for row in db.execute(sql, (story_id, limit))]


def articles_per_source(path: Path, *, since: str, bucket_s: int) -> dict[str, list[tuple[int, int]]]:
    """Articles written since ``since`` (ISO time) per source, as (bucket start unix time, count)."""
    sql = (
        "SELECT source_name, CAST(strftime('%s', written_at) AS INTEGER) / ? * ? AS bucket, count(*)"
        " FROM articles WHERE written_at >= ? GROUP BY source_name, bucket ORDER BY bucket"
    )
    counts: dict[str, list[tuple[int, int]]] = {}
    with _read_only(path) as db:
        for source, bucket, count in db.execute(sql, (bucket_s, bucket_s, since)):
            counts.setdefault(source, []).append((int(bucket), int(count)))
    return counts


def last_article_per_source(path: Path) -> dict[str, str]:
    """Each source's newest write time (ISO)."""
    with _read_only(path) as db:
        return dict(db.execute("SELECT source_name, max(written_at) FROM articles GROUP BY source_name").fetchall())
