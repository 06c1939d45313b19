"""Finds an article by id where newswire keeps it: the SQLite sink (originals), else the
raw topic (every article, duplicates included), for inspection commands."""

from __future__ import annotations

import sqlite3

from kafka import KafkaConsumer, TopicPartition

from newswire.settings import Settings
from newswire.topics import client_config
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
    consumer = KafkaConsumer(**client_config(settings.kafka), group_id=None, enable_auto_commit=False)
    try:
        topic = settings.topics.raw
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: CleanedArticle | None = None
        wanted = article_id.encode()
        while any(consumer.position(p) < ends[p] for p in partitions):
            for messages in consumer.poll(timeout_ms=1000).values():
                for message in messages:
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
    finally:
        consumer.close()
