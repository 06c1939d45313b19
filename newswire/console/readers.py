"""What the console reads, kept fresh in background threads: the services' metrics, sampled
over the last hour for the charts, and the newest records of the dead-letter, duplicates
and enriched topics.

Every reader is read-only: topics are read with an assigned consumer and no group (nothing
is ever committed), metrics are plain HTTP scrapes of the services' own endpoints. None of
this module decides what is healthy; ``newswire.console.status`` does, from what it reads.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas import DeadLetter, DuplicateNotice, EnrichedArticle, RecordDecodeError, decode

log = logging.getLogger(__name__)

HOUR_S = 3600.0
LabelSet = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scrape:
    """One scrape of a /metrics page: value by (sample name, sorted labels)."""

    at: float
    values: Mapping[tuple[str, LabelSet], float]

    def get(self, name: str, **labels: str) -> float | None:
        return self.values.get((name, tuple(sorted(labels.items()))))

    def series(self, name: str) -> dict[LabelSet, float]:
        return {labels: value for (sample, labels), value in self.values.items() if sample == name}

    def total(self, name: str) -> float:
        return sum(self.series(name).values())


def parse_metrics(text: str, at: float) -> Scrape:
    values: dict[tuple[str, LabelSet], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return Scrape(at, values)


@dataclass
class MetricsSampler:
    """Scrapes one service's /metrics every ``interval_s``; keeps an hour of scrapes."""

    url: str
    interval_s: float
    scrapes: deque[Scrape] = field(default_factory=deque)
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sample(self) -> None:
        now = time.time()
        try:
            with urllib.request.urlopen(self.url, timeout=min(5.0, self.interval_s * 2)) as response:  # noqa: S310
                text = response.read().decode("utf-8")
        except OSError as error:
            self.error = f"{self.url}: {error}"
            return
        self.error = None
        scrape = parse_metrics(text, now)
        with self._lock:
            self.scrapes.append(scrape)
            while self.scrapes and self.scrapes[0].at < now - HOUR_S:
                self.scrapes.popleft()

    def latest(self) -> Scrape | None:
        with self._lock:
            return self.scrapes[-1] if self.scrapes else None

    def history(self) -> list[Scrape]:
        with self._lock:
            return list(self.scrapes)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.sample()
            stop.wait(self.interval_s)


def rate_series(scrapes: list[Scrape], name: str) -> list[tuple[float, float]]:
    """Per-second increase of the summed counter ``name`` between consecutive scrapes."""
    points = []
    for before, after in itertools.pairwise(scrapes):
        elapsed = after.at - before.at
        if elapsed > 0:
            points.append((after.at, max(0.0, after.total(name) - before.total(name)) / elapsed))
    return points


def mean_series(scrapes: list[Scrape], sum_name: str, count_name: str) -> list[tuple[float, float | None]]:
    """Mean of a histogram over each interval between scrapes (None where nothing was observed)."""
    points: list[tuple[float, float | None]] = []
    for before, after in itertools.pairwise(scrapes):
        count = after.total(count_name) - before.total(count_name)
        total = after.total(sum_name) - before.total(sum_name)
        points.append((after.at, total / count if count > 0 else None))
    return points


class TopicFollower:
    """Follows every partition of a topic from its newest ``backlog`` records on, handing each
    record's value to ``handle``; no consumer group, nothing committed."""

    def __init__(
        self, consumer_config: Mapping[str, Any], topic: str, backlog: int, handle: Callable[[Any], None]
    ) -> None:
        self._consumer_config = dict(consumer_config)
        self._topic = topic
        self._backlog = backlog
        self._handle = handle
        self.caught_up = threading.Event()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._follow(stop)
            except Exception as error:  # the broker away: say so, try again
                log.warning("console cannot read topic", extra={"topic": self._topic, "error": str(error)})
                stop.wait(2.0)

    def _follow(self, stop: threading.Event) -> None:
        consumer = KafkaConsumer(**self._consumer_config, group_id=None, enable_auto_commit=False)
        try:
            partitions = [
                TopicPartition(self._topic, p) for p in sorted(consumer.partitions_for_topic(self._topic) or [])
            ]
            if not partitions:
                stop.wait(2.0)
                return
            consumer.assign(partitions)
            beginnings = consumer.beginning_offsets(partitions)
            ends = consumer.end_offsets(partitions)
            for partition in partitions:
                consumer.seek(partition, max(beginnings[partition], ends[partition] - self._backlog))
            while not stop.is_set():
                for messages in consumer.poll(timeout_ms=500).values():
                    for message in messages:
                        self._handle(message)
                if all(consumer.position(p) >= ends[p] for p in partitions):
                    self.caught_up.set()
        finally:
            consumer.close()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name=f"console-{self._topic}", daemon=True)
        thread.start()
        return thread


@dataclass(frozen=True)
class ShownDeadLetter:
    dead_letter: DeadLetter
    partition: int
    offset: int


class DeadLetterLog:
    """The newest dead letters, newest first."""

    def __init__(self, limit: int) -> None:
        self._items: deque[ShownDeadLetter] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def add(self, message: Any) -> None:
        try:
            dead_letter = decode(message.value, DeadLetter)
        except RecordDecodeError:
            return  # not a dead letter: nothing to show
        with self._lock:
            self._items.append(ShownDeadLetter(dead_letter, message.partition, message.offset))

    def newest(self) -> list[ShownDeadLetter]:
        with self._lock:
            items = list(self._items)
        return sorted(items, key=lambda i: i.dead_letter.occurred_at, reverse=True)


@dataclass(frozen=True)
class VersionSeen:
    version: int | None
    fetched_at: str
    updated_at: str | None
    content_fingerprint: str
    title: str
    partition: int
    offset: int


class ArticleIndex:
    """What the topics say of each article beyond its stored record: the versions published on
    the enriched topic and the duplicate notices naming it as the original."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._versions: dict[str, list[VersionSeen]] = {}
        self._duplicates: dict[str, list[DuplicateNotice]] = {}
        self._lock = threading.Lock()

    def add_enriched(self, message: Any) -> None:
        try:
            article = decode(message.value, EnrichedArticle)
        except RecordDecodeError:
            return
        seen = VersionSeen(
            article.version,
            article.fetched_at.isoformat(),
            article.updated_at.isoformat() if article.updated_at else None,
            article.content_fingerprint,
            article.title,
            message.partition,
            message.offset,
        )
        with self._lock:
            versions = self._versions.setdefault(article.article_id, [])
            if all(v.content_fingerprint != seen.content_fingerprint for v in versions):
                versions.append(seen)
            self._trim(self._versions)

    def add_duplicate(self, message: Any) -> None:
        try:
            notice = decode(message.value, DuplicateNotice)
        except RecordDecodeError:
            return
        with self._lock:
            self._duplicates.setdefault(notice.duplicate_of, []).append(notice)
            self._trim(self._duplicates)

    def _trim(self, index: dict[str, Any]) -> None:
        while len(index) > self._limit:
            del index[next(iter(index))]  # the oldest article first (dicts keep insertion order)

    def versions(self, article_id: str) -> list[VersionSeen]:
        with self._lock:
            return sorted(self._versions.get(article_id, []), key=lambda v: (v.version or 0, v.fetched_at))

    def duplicates_of(self, article_id: str) -> list[DuplicateNotice]:
        with self._lock:
            return list(self._duplicates.get(article_id, []))


def start_all(threads: Iterable[Callable[[threading.Event], Any]], stop: threading.Event) -> None:
    for run in threads:
        threading.Thread(target=run, args=(stop,), daemon=True).start()
