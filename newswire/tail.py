"""Reading a topic from outside the pipeline: ``newswire tail`` follows one and prints its
records as they arrive; ``records_to_end`` reads one from the beginning to its current end
(for inspection commands, tests and benchmarks). Both read without a consumer group, so
they never move the pipeline's committed offsets.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from newswire.settings import KafkaSettings
from newswire.topics import client_config


@dataclass(frozen=True)
class TailFilter:
    """Which records to show; a record a filter cannot judge (not JSON) is shown only unfiltered."""

    language: str | None = None
    source: str | None = None
    keyword: str | None = None
    since: str | None = None  # ISO date or time, compared with published_at (else fetched_at / occurred_at)

    def active(self) -> bool:
        return any((self.language, self.source, self.keyword, self.since))

    def accepts(self, value: bytes | None) -> bool:
        if not self.active():
            return True
        try:
            record = json.loads(value or b"")
        except ValueError:
            return False
        if not isinstance(record, dict):
            return False
        if self.language:
            detected = (record.get("detected_language") or {}).get("code")
            if self.language not in (detected, record.get("language")):
                return False
        if self.source:
            source = record.get("source") or {}
            if self.source not in (source.get("name"), record.get("source_name")):
                return False
        if self.keyword:
            text = f"{record.get('title', '')} {record.get('body', '')} {record.get('error', '')}".casefold()
            if self.keyword.casefold() not in text:
                return False
        if self.since:
            when = record.get("published_at") or record.get("fetched_at") or record.get("occurred_at") or ""
            if when < self.since:
                return False
        return True


def tail_topic(
    kafka: KafkaSettings,
    topic: str,
    *,
    from_beginning: bool,
    as_json: bool,
    limit: int | None,
    idle_timeout_s: float | None,
    stop: threading.Event,
    only: TailFilter = TailFilter(),
) -> Iterator[str]:
    consumer = KafkaConsumer(**client_config(kafka), group_id=None, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise SystemExit(f"newswire: topic {topic!r} does not exist (see `newswire topics`)")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        if from_beginning:
            consumer.seek_to_beginning(*assigned)
        else:
            consumer.seek_to_end(*assigned)
        shown = 0
        last_record = time.monotonic()
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=500)
            if not polled:
                if idle_timeout_s is not None and time.monotonic() - last_record > idle_timeout_s:
                    return
                continue
            last_record = time.monotonic()
            for messages in polled.values():
                for message in messages:
                    if not only.accepts(message.value):
                        continue
                    yield message.value.decode("utf-8", "replace") if as_json else _pretty(message)
                    shown += 1
                    if limit is not None and shown >= limit:
                        return
    finally:
        consumer.close()


def records_to_end(kafka: KafkaSettings, topic: str) -> Iterator[ConsumerRecord]:
    """Every record of ``topic``, from the beginning to its end when called; none if it does not exist.

    Records of one partition come in offset order; partitions interleave as polls return them.
    """
    consumer = KafkaConsumer(**client_config(kafka), group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        while any(consumer.position(p) < ends[p] for p in partitions):
            for messages in consumer.poll(timeout_ms=1000).values():
                yield from messages
    finally:
        consumer.close()


def _pretty(message: object) -> str:
    value = getattr(message, "value", b"") or b""
    where = f"{getattr(message, 'partition', '?')}/{getattr(message, 'offset', '?')}"
    try:
        record = json.loads(value)
    except ValueError:
        return f"[{where}] (not JSON) {value[:200]!r}"
    if not isinstance(record, dict):
        return f"[{where}] {record!r}"
    if "title" in record:
        language = (record.get("detected_language") or {}).get("code") or record.get("language") or "?"
        return f"[{where}] {record.get('article_id')} [{language}] {record['title']}"
    if "duplicate_of" in record:
        return f"[{where}] {record.get('article_id')} duplicate of {record['duplicate_of']} ({record.get('layer')})"
    if "error" in record:
        return f"[{where}] dead letter from {record.get('stage')}: {record['error']}"
    return f"[{where}] {json.dumps(record, ensure_ascii=False)[:300]}"
