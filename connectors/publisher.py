"""Publishes connector output to Kafka: articles to the raw topic, rejections to dead letters,
page-fetch tasks to the fetch-task topic.

This is the only place connectors touch Kafka. Records are keyed by article id so that
all versions of one article land on one partition, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from kafka import KafkaProducer

from schemas import CleanedArticle, DeadLetter, encode, record_headers
from schemas.feed_entry import FeedEntry

log = logging.getLogger(__name__)


class KafkaPublisher:
    """A durable (acks=all, idempotent) producer for the raw and dead-letter topics."""

    def __init__(
        self,
        producer_config: Mapping[str, Any],
        *,
        raw_topic: str,
        dead_letter_topic: str,
        fetch_task_topic: str | None = None,
    ) -> None:
        self._raw_topic = raw_topic
        self._dead_letter_topic = dead_letter_topic
        self._fetch_task_topic = fetch_task_topic
        self._producer = KafkaProducer(
            **producer_config,
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
        )
        self._failures: list[BaseException] = []

    def publish_article(self, article: CleanedArticle) -> None:
        self._send(self._raw_topic, article.article_id, encode(article), record_headers(article))

    def publish_dead_letter(self, dead_letter: DeadLetter) -> None:
        self._send(self._dead_letter_topic, dead_letter.source_name, encode(dead_letter), record_headers(dead_letter))

    def publish_fetch_task(self, entry: FeedEntry) -> None:
        """Queue a page fetch. Keyed by host, so one host's fetches share one partition and
        therefore one fetch worker at a time: the per-host budget holds across the fleet."""
        if self._fetch_task_topic is None:
            raise ValueError("this publisher was built without a fetch_task_topic")
        host = urlsplit(entry.canonical_url).hostname or ""
        self._send(self._fetch_task_topic, host, encode(entry), record_headers(entry))

    def _send(self, topic: str, key: str | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        future = self._producer.send(topic, key=key.encode("utf-8") if key else None, value=value, headers=headers)
        future.add_errback(self._failures.append)

    def flush(self) -> None:
        """Block until every record is acknowledged; raise if any was refused."""
        self._producer.flush()
        if self._failures:
            failures, self._failures = self._failures, []
            raise PublishError(f"{len(failures)} record(s) were not acknowledged by Kafka: {failures[0]!r}")

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
