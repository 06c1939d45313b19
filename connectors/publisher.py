"""Publishes connector output to Kafka: articles to the raw topic, rejections to dead letters,
page-fetch tasks to the fetch-task topic.

This is the only place connectors touch Kafka, and the place where what cannot fit is
refused: an article whose record is larger than the raw topic takes becomes a
``too_large`` dead letter here, never a failed write later. Articles are keyed by article
id so that all versions of one article land on one partition, in order; dead letters by
their ``dead_letter_id``, so that a consumer can drop a repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from schemas import CleanedArticle, DeadLetter, encode, record_headers
from schemas.dead_letter import fit_dead_letter
from schemas.feed_entry import FeedEntry
from schemas.producer import DurableProducer, ProduceFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishLimits:
    """The largest records the publisher may send, from the ``limits`` settings."""

    max_article_bytes: int
    max_dead_letter_bytes: int
    max_dead_letter_original_bytes: int
    max_fetch_task_bytes: int

    def __post_init__(self) -> None:
        if min(self.max_article_bytes, self.max_dead_letter_bytes, self.max_fetch_task_bytes) < 1:
            raise ValueError(f"publish limits must be positive: {self}")


class Published(StrEnum):
    """What became of one article handed to ``publish_article``."""

    PUBLISHED = "published"
    TOO_LARGE = "too_large"  # refused, and published as a dead letter instead


class KafkaPublisher:
    """A durable (acks=all, idempotent) producer for the raw, dead-letter and fetch-task topics."""

    def __init__(
        self,
        producer_config: Mapping[str, Any],
        *,
        raw_topic: str,
        dead_letter_topic: str,
        limits: PublishLimits,
        fetch_task_topic: str | None = None,
    ) -> None:
        self._raw_topic = raw_topic
        self._dead_letter_topic = dead_letter_topic
        self._fetch_task_topic = fetch_task_topic
        self._limits = limits
        self._producer = DurableProducer(producer_config)

    def publish_article(self, article: CleanedArticle) -> Published:
        """Send ``article`` to the raw topic, or, when its record is over the raw topic's limit, a dead letter."""
        value = encode(article)
        if len(value) > self._limits.max_article_bytes:
            log.warning(
                "article too large for the raw topic; dead-lettered",
                extra={"article_id": article.article_id, "bytes": len(value), "source": article.source.name},
            )
            self.publish_dead_letter(
                DeadLetter.of(
                    stage="publish",
                    error_type="too_large",
                    error=f"article {article.article_id} from {article.source.name}: its record is {len(value)} "
                    f"bytes, over limits.max_article_bytes={self._limits.max_article_bytes}; raise that limit "
                    "(every topic and client limit follows it) and fetch the article again",
                    original=value,
                    max_original_bytes=self._limits.max_dead_letter_original_bytes,
                    key=article.article_id,
                    source_name=article.source.name,
                    source_url=article.canonical_url or article.source.url,
                )
            )
            return Published.TOO_LARGE
        self._producer.send(
            self._raw_topic, key=article.article_id.encode("utf-8"), value=value, headers=record_headers(article)
        )
        return Published.PUBLISHED

    def publish_dead_letter(self, dead_letter: DeadLetter) -> None:
        """Send ``dead_letter``, trimmed to fit the dead-letter topic, keyed by its ``dead_letter_id``."""
        fitted = fit_dead_letter(dead_letter, self._limits.max_dead_letter_bytes)
        key = fitted.dead_letter_id or fitted.source_name
        self._producer.send(
            self._dead_letter_topic,
            key=key.encode("utf-8") if key else None,
            value=encode(fitted),
            headers=record_headers(fitted),
        )

    def publish_fetch_task(self, entry: FeedEntry) -> None:
        """Queue a page fetch. Keyed by host, so one host's fetches share one partition and
        therefore one fetch worker at a time: the per-host budget holds across the fleet."""
        if self._fetch_task_topic is None:
            raise ValueError("this publisher was built without a fetch_task_topic")
        value = encode(entry)
        if len(value) > self._limits.max_fetch_task_bytes:
            self.publish_dead_letter(
                DeadLetter.of(
                    stage="poll",
                    error_type="too_large",
                    error=f"feed entry {entry.canonical_url} of source {entry.source_name}: {len(value)} bytes, over "
                    f"limits.max_fetch_task_bytes={self._limits.max_fetch_task_bytes}",
                    original=value,
                    max_original_bytes=self._limits.max_dead_letter_original_bytes,
                    source_name=entry.source_name,
                    source_url=entry.canonical_url,
                )
            )
            return
        host = urlsplit(entry.canonical_url).hostname or ""
        self._producer.send(
            self._fetch_task_topic, key=host.encode("utf-8"), value=value, headers=record_headers(entry)
        )

    def flush(self) -> None:
        """Block until every record is acknowledged; raise if any was refused."""
        try:
            self._producer.flush()
        except ProduceFailed as failed:
            raise PublishError(str(failed)) from failed

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._producer.close()

    def __enter__(self) -> KafkaPublisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PublishError(RuntimeError):
    """Kafka refused or timed out records; nothing was lost silently, the caller must retry."""
