"""A PostgreSQL table of enriched articles, upserted by article id.

Each batch is copied (``COPY``) into a session-local temporary table and merged into the
articles table with one ``INSERT ... ON CONFLICT (article_id) DO UPDATE``, in one
transaction: a batch is either wholly written or not at all, and writing it again (a
replay, or a micro-batch re-run after a crash) overwrites the same rows instead of adding
new ones. Within one batch the last copy of an article wins, as it would row by row.

The table and its indexes are created on first use, under an advisory lock so that
several workers starting together do not race on ``CREATE TABLE IF NOT EXISTS``.

This module must never hold a connection while being pickled (Beam ships sinks to
workers), never build SQL from values (only the validated table name is formatted in),
and never log or store the password outside the ``SecretStr`` it arrives in.

PostgreSQL's text types cannot hold the NUL character; the rare NUL in an article is
replaced by U+FFFD in the columns and in ``record`` here only, not in Kafka or other sinks.

Errors are told apart by SQLSTATE class (``unavailable``): a server that is down, shutting
down, out of disk or connections, or a transaction rolled back by a deadlock is an outage
(``SinkUnavailable``); anything else, such as a value over a limit of PostgreSQL's own, is
the article's, and that article alone is dead-lettered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from pipeline.dependencies import SinkUnavailable
from pipeline.sinks import POSTGRES_TABLE_NAME, POSTGRES_TABLE_NAME_RULE
from pipeline.sinks.base import Sink
from schemas import EnrichedArticle, encode

_IDENTIFIER = re.compile(POSTGRES_TABLE_NAME)
# Any constant works; it only has to be the same for every newswire worker.
_SCHEMA_LOCK_KEY = 0x6E657773  # "news"
# SQLSTATE classes of the server's state, not of the row: connection exception (08),
# transaction rollback (40: deadlock, serialization), insufficient resources (53: disk
# full, out of memory, too many connections), operator intervention (57: shutdown), system
# error (58: I/O).
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_PROBE_TIMEOUT_S = 3
_COLUMNS = (
    "article_id",
    "canonical_url",
    "title",
    "body",
    "language",
    "published_at",
    "fetched_at",
    "source_kind",
    "source_name",
    "word_count",
    "content_fingerprint",
    "story_id",
    "record",
)


def _schema(table: str) -> sql.Composed:
    return sql.SQL(
        """
        CREATE TABLE IF NOT EXISTS {table} (
            article_id TEXT PRIMARY KEY,
            canonical_url TEXT,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            language TEXT,
            published_at TIMESTAMPTZ,
            fetched_at TIMESTAMPTZ NOT NULL,
            source_kind TEXT NOT NULL,
            source_name TEXT NOT NULL,
            word_count INTEGER,
            content_fingerprint TEXT NOT NULL,
            story_id TEXT,
            record JSONB NOT NULL,
            written_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS {by_published} ON {table} (published_at);
        CREATE INDEX IF NOT EXISTS {by_story} ON {table} (story_id);
        """
    ).format(
        table=sql.Identifier(table),
        by_published=sql.Identifier(f"{table}_by_published"),
        by_story=sql.Identifier(f"{table}_by_story"),
    )


def _merge(table: str, staging: str) -> sql.Composed:
    updates = sql.SQL(", ").join(
        sql.SQL("{column} = excluded.{column}").format(column=sql.Identifier(c)) for c in _COLUMNS[1:]
    )
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS)
    return sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "
        "ON CONFLICT (article_id) DO UPDATE SET {updates}, written_at = now()"
    ).format(table=sql.Identifier(table), staging=sql.Identifier(staging), columns=columns, updates=updates)


def _without_nul(text: str | None) -> str | None:
    return text.replace("\x00", "\ufffd") if text is not None and "\x00" in text else text


def _record_json(article: EnrichedArticle) -> str:
    encoded = encode(article).decode("utf-8")
    if "\\u0000" not in encoded:
        return encoded

    # jsonb rejects \u0000; rewrite only the strings, so escaped backslashes stay intact.
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("\x00", "\ufffd")
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        return value

    return json.dumps(clean(json.loads(encoded)), ensure_ascii=False)


def article_row(article: EnrichedArticle) -> tuple[Any, ...]:
    """The row ``article`` becomes, in ``_COLUMNS`` order."""
    return (
        article.article_id,
        _without_nul(article.canonical_url),
        _without_nul(article.title),
        _without_nul(article.body),
        article.effective_language,
        article.published_at,
        article.fetched_at,
        article.source.kind.value,
        _without_nul(article.source.name),
        article.word_count,
        article.content_fingerprint,
        article.story_id,
        _record_json(article),
    )


def last_copy_per_id(batch: Sequence[EnrichedArticle]) -> list[EnrichedArticle]:
    """One article per id, the last in ``batch`` order: ON CONFLICT cannot touch a row twice
    in one statement, and last-wins is what writing the batch row by row would leave."""
    return list({a.article_id: a for a in batch}.values())


def password_in_dsn(dsn: str) -> bool:
    try:
        return "password" in conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as error:
        raise ValueError(f"not a PostgreSQL connection string ({error})") from None


class PostgresSink(Sink):
    """Upserts into ``table`` in the database ``dsn`` names; the password comes separately."""

    name = "postgres"
    withdraws = True

    def __init__(
        self,
        dsn: str,
        *,
        password: SecretStr | None = None,
        table: str = "articles",
        connect_timeout_s: int = 10,
        application_name: str = "newswire-pipeline",
    ) -> None:
        if not _IDENTIFIER.match(table):
            raise ValueError(f"table name {table!r} must be {POSTGRES_TABLE_NAME_RULE} (setting sinks.postgres_table)")
        if password_in_dsn(dsn):
            raise ValueError(
                "the PostgreSQL DSN carries a password; pass it as the password (setting "
                "sinks.postgres_password, NEWSWIRE_SINKS__POSTGRES_PASSWORD) so that it stays masked"
            )
        if connect_timeout_s < 1:
            raise ValueError("connect_timeout_s must be at least 1")
        self.dsn = dsn
        self.table = table
        self._password = password
        self._connect_timeout_s = connect_timeout_s
        self._application_name = application_name
        self._staging = f"{table}_batch"
        self._withdrawn = f"{table}_withdrawn"  # demoted articles: deleted, and kept out if written again
        self._db: psycopg.Connection[Any] | None = None

    def open(self) -> None:
        self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        extra: dict[str, Any] = {}
        if self._password is not None:
            extra["password"] = self._password.get_secret_value()
        try:
            db = psycopg.connect(
                self.dsn,
                connect_timeout=self._connect_timeout_s,
                application_name=self._application_name,
                **extra,
            )
        except psycopg.OperationalError as error:
            # psycopg's message names host and port but never the password.
            raise ConnectionError(f"PostgreSQL sink cannot connect to {self.dsn!r}: {error}") from error
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            db.execute(_schema(self.table))
            db.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {withdrawn} "
                    "(article_id TEXT PRIMARY KEY, withdrawn_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                ).format(withdrawn=sql.Identifier(self._withdrawn))
            )
        db.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ).format(staging=sql.Identifier(self._staging), table=sql.Identifier(self.table))
        )
        db.commit()
        self._db = db
        return db

    def _connection(self) -> psycopg.Connection[Any]:
        db = self._db
        if db is None or db.closed or db.broken:
            # A connection lost since the last batch: reconnect once. A failure inside
            # the transaction that follows propagates, so the micro-batch re-runs as a whole.
            self.close()
            db = self._connect()
        return db

    def write(self, batch: Sequence[EnrichedArticle]) -> None:
        db = self._connection()
        rows = [article_row(a) for a in last_copy_per_id(batch)]
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS)
        with db.transaction(), db.cursor() as cursor:
            with cursor.copy(
                sql.SQL("COPY {staging} ({columns}) FROM STDIN").format(
                    staging=sql.Identifier(self._staging), columns=columns
                )
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_merge(self.table, self._staging))
            # A withdrawal may have run first (the two stages run in parallel): it stands.
            cursor.execute(
                sql.SQL(
                    "DELETE FROM {table} t USING {withdrawn} w WHERE t.article_id = w.article_id "
                    "AND t.article_id = ANY(%s)"
                ).format(table=sql.Identifier(self.table), withdrawn=sql.Identifier(self._withdrawn)),
                ([row[0] for row in rows],),
            )

    def withdraw(self, article_ids: Sequence[str]) -> None:
        db = self._connection()
        with db.transaction(), db.cursor() as cursor:
            cursor.execute(
                sql.SQL("INSERT INTO {withdrawn} (article_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING").format(
                    withdrawn=sql.Identifier(self._withdrawn)
                ),
                (list(article_ids),),
            )
            cursor.execute(
                sql.SQL("DELETE FROM {table} WHERE article_id = ANY(%s)").format(table=sql.Identifier(self.table)),
                (list(article_ids),),
            )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def probe(self) -> None:
        extra: dict[str, Any] = {}
        if self._password is not None:
            extra["password"] = self._password.get_secret_value()
        try:
            with psycopg.connect(
                self.dsn, connect_timeout=_PROBE_TIMEOUT_S, application_name=self._application_name, **extra
            ) as db:
                db.execute("SELECT 1")
        except psycopg.Error as error:
            raise SinkUnavailable(self.check, f"{self.dsn!r} does not answer: {_first_line(error)}") from error

    def unavailable(self, error: BaseException) -> SinkUnavailable | None:
        if isinstance(error, psycopg.Error):
            sqlstate = error.sqlstate
            # No SQLSTATE: the client's own failure to reach or keep the server.
            down = (sqlstate is None and isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))) or (
                sqlstate is not None and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES
            )
            if down or (self._db is not None and self._db.broken):
                self.close()  # the next write reconnects
                return SinkUnavailable(self.check, f"{self.dsn!r}: {_first_line(error)}")
            return None
        return super().unavailable(error)

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_db": None}


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
