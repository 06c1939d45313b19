"""Finds an article by id where newswire keeps it: the SQLite sink (originals), else the
raw topic (every article, duplicates included), for inspection commands.

It only chooses where to look: the sink module reads its own table, and the pipeline says
what an article looks like before enrichment.
"""

from __future__ import annotations

from newswire.settings import Settings
from newswire.tail import records_to_end
from pipeline.enrich import without_enrichers
from pipeline.sinks.sqlite import stored_article
from schemas import CleanedArticle, EnrichedArticle, RecordDecodeError, decode


def find_article(settings: Settings, article_id: str) -> EnrichedArticle | None:
    return stored_article(settings.sinks.sqlite_path, article_id) or _from_raw_topic(settings, article_id)


def _from_raw_topic(settings: Settings, article_id: str) -> EnrichedArticle | None:
    """The latest raw record keyed by ``article_id``, with the fields every enrichment derives."""
    found: CleanedArticle | None = None
    wanted = article_id.encode()
    for message in records_to_end(settings.kafka, settings.topics.raw):
        if message.key == wanted:
            try:
                found = decode(message.value, CleanedArticle)
            except RecordDecodeError:
                continue
    return without_enrichers(found) if found is not None else None
