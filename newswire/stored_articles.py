"""Finds an article by id where newswire keeps it: the SQLite sink (originals), else the
raw topic (every article, duplicates included), for inspection commands."""

from __future__ import annotations

import sqlite3

from newswire.settings import Settings
from newswire.tail import records_to_end
from pipeline.enrich import content_fingerprint
from schemas import CleanedArticle, EnrichedArticle, RecordDecodeError, decode
from schemas.timestamps import utc_now


def find_article(settings: Settings, article_id: str) -> EnrichedArticle | None:
    return _from_sqlite(settings, article_id) or _from_raw_topic(settings, article_id)


def _from_sqlite(settings: Settings, article_id: str) -> EnrichedArticle | None:
    path = settings.sinks.sqlite_path
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT record FROM articles WHERE article_id = ?", (article_id,)).fetchone()
    return decode(row[0].encode(), EnrichedArticle) if row else None


def _from_raw_topic(settings: Settings, article_id: str) -> EnrichedArticle | None:
    """The latest raw record keyed by ``article_id``, given the fields enrichment derives."""
    found: CleanedArticle | None = None
    wanted = article_id.encode()
    for message in records_to_end(settings.kafka, settings.topics.raw):
        if message.key == wanted:
            try:
                found = decode(message.value, CleanedArticle)
            except RecordDecodeError:
                continue
    if found is None:
        return None
    return EnrichedArticle.model_validate(
        {**dict(found), "enriched_at": utc_now(), "content_fingerprint": content_fingerprint(found.body)}
    )
