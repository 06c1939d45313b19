"""What ``newswire dead-letters list|show|replay`` does: an operator's view of the dead-letter topic.

``read_dead_letters`` reads the whole topic (without a consumer group, so no one's
offsets move) and keeps one entry per ``dead_letter_id``: the topic is at-least-once, and
a repeat is the same failure. ``replay`` sends chosen dead letters' originals back to the
raw topic, once their cause is fixed. A dead letter that holds only a prefix of its
original is completed from the raw topic at its coordinates, checked against its
sha256; one whose original is gone (past retention), was never a raw record (a page, a
seed file), or is still over ``limits.max_article_bytes`` is refused, with the reason.

This module must never write anywhere but the raw topic, never send an original it
could not verify against the dead letter's digest, and never commit any offsets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kafka import KafkaConsumer, TopicPartition

from newswire.settings import KafkaSettings, LimitSettings, TopicSettings
from newswire.tail import records_to_end
from newswire.topics import consumer_config, producer_config
from schemas import DeadLetter, RecordDecodeError, decode
from schemas.producer import DurableProducer

# The connectors' stages whose original is a seed file, a feed or a page, not a record for the
# raw topic; every other stage (publish, decode, enrich, dedup, encode, sink:*, kafka:*, batch)
# keeps the article as the raw topic carries it.
_NOT_RAW_RECORD_STAGES = ("replay", "poll", "parse", "fetch", "extract")
_PREVIEW_BYTES = 400
_POLL_TIMEOUT_MS = 1_000


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters to show or replay; unset fields match everything."""

    stage: str | None = None
    error_type: str | None = None
    source: str | None = None  # source name, or a substring of the source URL
    since: datetime | None = None
    until: datetime | None = None

    def active(self) -> bool:
        return any(v is not None for v in (self.stage, self.error_type, self.source, self.since, self.until))

    def accepts(self, letter: DeadLetter) -> bool:
        if self.stage is not None and letter.stage != self.stage:
            return False
        if self.error_type is not None and letter.error_type != self.error_type:
            return False
        from_source = self.source in (letter.source_name, None) or self.source in (letter.source_url or "")
        if not from_source:
            return False
        if self.since is not None and letter.occurred_at < self.since:
            return False
        return self.until is None or letter.occurred_at < self.until


@dataclass(frozen=True)
class StoredDeadLetter:
    """One dead letter as found on its topic: the first record with its id, and how many there were."""

    letter: DeadLetter
    partition: int
    offset: int
    copies: int = 1

    @property
    def id(self) -> str:
        return self.letter.dead_letter_id or f"p{self.partition}-o{self.offset}"


@dataclass(frozen=True)
class DeadLetterTopic:
    """The dead letters on the topic, newest first, and what else was found there."""

    letters: tuple[StoredDeadLetter, ...]
    undecodable: int  # records on the topic that are not dead letters

    def matching(self, only: DeadLetterFilter) -> list[StoredDeadLetter]:
        return [stored for stored in self.letters if only.accepts(stored.letter)]

    def find(self, id_or_prefix: str) -> StoredDeadLetter:
        """The dead letter with this id, or the only one whose id starts with it."""
        found = [s for s in self.letters if s.id == id_or_prefix] or [
            s for s in self.letters if s.id.startswith(id_or_prefix)
        ]
        if not found:
            raise LookupError(f"no dead letter {id_or_prefix!r} on the topic (see `newswire dead-letters list`)")
        if len(found) > 1:
            raise LookupError(f"{id_or_prefix!r} names {len(found)} dead letters; give more of the id")
        return found[0]


def read_dead_letters(kafka: KafkaSettings, topic: str) -> DeadLetterTopic:
    """Every dead letter on ``topic`` up to its current end, one per ``dead_letter_id``, newest first."""
    by_id: dict[str, StoredDeadLetter] = {}
    undecodable = 0
    for record in records_to_end(kafka, topic):
        try:
            letter = decode(record.value, DeadLetter)
        except RecordDecodeError:
            undecodable += 1
            continue
        stored = StoredDeadLetter(letter, record.partition, record.offset)
        earlier = by_id.get(stored.id)
        if earlier is None:
            by_id[stored.id] = stored
        else:
            # Records of one id share a partition (the key), so the first read is the first written.
            by_id[stored.id] = StoredDeadLetter(earlier.letter, earlier.partition, earlier.offset, earlier.copies + 1)
    letters = sorted(by_id.values(), key=lambda s: (s.letter.occurred_at, s.partition, s.offset), reverse=True)
    return DeadLetterTopic(tuple(letters), undecodable)


def list_lines(letters: Iterable[StoredDeadLetter]) -> list[str]:
    """One line per dead letter: id, time, stage/type, source, coordinates, the start of the error."""
    lines = []
    for stored in letters:
        letter = stored.letter
        where = _coordinates(letter) or "-"
        source = letter.source_name or letter.source_url or letter.key or "-"
        repeats = f" (x{stored.copies} on the topic)" if stored.copies > 1 else ""
        error = " ".join(letter.error.split())
        lines.append(
            f"{stored.id}  {letter.occurred_at.isoformat(timespec='seconds')}  {letter.stage}/{letter.error_type}  "
            f"{source}  {where}{repeats}  {error[:120]}"
        )
    return lines


def show_lines(stored: StoredDeadLetter) -> list[str]:
    """Everything a dead letter says, with its original's first bytes."""
    letter = stored.letter
    lines = [
        f"dead letter  {stored.id}",
        f"occurred at  {letter.occurred_at.isoformat()}",
        f"stage        {letter.stage}",
        f"error type   {letter.error_type}",
        f"error        {letter.error}",
        f"source       {letter.source_name or '-'}",
        f"url          {letter.source_url or '-'}",
        f"coordinates  {_coordinates(letter) or '- (not from a Kafka record)'}",
        f"key          {letter.key or '-'}",
        f"on the topic partition {stored.partition} offset {stored.offset}"
        + (f", {stored.copies} copies (drop repeats by key)" if stored.copies > 1 else ""),
    ]
    if letter.original is None:
        lines.append("original     none kept")
        return lines
    size = letter.original_size if letter.original_size is not None else len(letter.original)
    kept = f"first {len(letter.original)} of {size} bytes" if letter.original_truncated else f"{size} bytes, whole"
    lines.append(f"original     {kept}, sha256 {letter.original_sha256 or '-'}")
    preview = letter.original[:_PREVIEW_BYTES].decode("utf-8", "replace")
    more = " …" if len(letter.original) > _PREVIEW_BYTES else ""
    lines.append(f"             {preview!r}{more}")
    return lines


class Replayed(StrEnum):
    SENT = "sent"
    WOULD_SEND = "would send"  # --dry-run
    REFUSED = "refused"


@dataclass(frozen=True)
class ReplayOutcome:
    id: str
    outcome: Replayed
    detail: str

    def line(self) -> str:
        return f"{self.id}: {self.outcome.value}: {self.detail}"


def replay(
    chosen: Sequence[StoredDeadLetter],
    *,
    kafka: KafkaSettings,
    topics: TopicSettings,
    limits: LimitSettings,
    dry_run: bool,
) -> list[ReplayOutcome]:
    """Send each chosen dead letter's whole original back to the raw topic (unless ``dry_run``)."""
    outcomes: list[ReplayOutcome] = []
    sends: list[tuple[StoredDeadLetter, bytes]] = []
    with _RawReader(kafka, limits) as raw:
        for stored in chosen:
            original, problem = _whole_original(stored.letter, raw, topics, limits)
            if original is None:
                outcomes.append(ReplayOutcome(stored.id, Replayed.REFUSED, problem))
                continue
            sends.append((stored, original))
    if dry_run or not sends:
        verb = Replayed.WOULD_SEND
        outcomes.extend(ReplayOutcome(s.id, verb, f"{len(o)} bytes to {topics.raw}") for s, o in sends)
        return outcomes
    producer = DurableProducer(producer_config(kafka, limits))
    try:
        for stored, original in sends:
            key = stored.letter.key.encode("utf-8") if stored.letter.key else None
            headers = [("replayed-dead-letter", stored.id.encode("utf-8"))]
            producer.send(topics.raw, key=key, value=original, headers=headers)
        producer.flush()  # raises if Kafka refused any: nothing is reported sent that was not
    finally:
        producer.close()
    outcomes.extend(ReplayOutcome(s.id, Replayed.SENT, f"{len(o)} bytes to {topics.raw}") for s, o in sends)
    return outcomes


def _whole_original(
    letter: DeadLetter, raw: _RawReader, topics: TopicSettings, limits: LimitSettings
) -> tuple[bytes | None, str]:
    """The dead letter's whole original and "", or None and why it cannot be replayed."""
    if letter.stage in _NOT_RAW_RECORD_STAGES and letter.topic != topics.raw:
        return None, (
            f"a {letter.stage} dead letter holds no raw record (its original is a page, a feed or a file); "
            "fix the source and let the connector fetch it again"
        )
    if letter.original is None:
        return None, "it kept no original"
    original = letter.original
    if letter.original_truncated:
        if letter.topic is None or letter.partition is None or letter.offset is None:
            return None, (
                f"it holds only the first {len(original)} of {letter.original_size} bytes and no coordinates to "
                "re-read the rest from; fetch the article again at its source"
            )
        reread, problem = raw.read(letter.topic, letter.partition, letter.offset)
        if reread is None:
            return None, problem
        original = reread
    if letter.original_sha256 is not None and hashlib.sha256(original).hexdigest() != letter.original_sha256:
        return None, (
            f"the record at {_coordinates(letter)} is not the one this dead letter is about (sha256 differs); "
            "the topic was recreated or rewritten"
        )
    if len(original) > limits.max_article_bytes:
        return None, (
            f"still too large: {len(original)} bytes, over limits.max_article_bytes={limits.max_article_bytes}; "
            "raise that limit first (every topic and client limit follows it, then run `newswire topics create`)"
        )
    return original, ""


class _RawReader:
    """Reads single records by coordinates, to complete truncated originals."""

    def __init__(self, kafka: KafkaSettings, limits: LimitSettings) -> None:
        self._kafka = kafka
        self._limits = limits
        self._consumer: KafkaConsumer | None = None

    def __enter__(self) -> _RawReader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._consumer is not None:
            self._consumer.close()

    def read(self, topic: str, partition: int, offset: int) -> tuple[bytes | None, str]:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                **consumer_config(self._kafka, self._limits), group_id=None, enable_auto_commit=False
            )
        consumer = self._consumer
        source = TopicPartition(topic, partition)
        where = f"{topic}/{partition}/{offset}"
        if partition not in (consumer.partitions_for_topic(topic) or set()):
            return None, f"its record at {where} is gone: the topic or partition no longer exists"
        first = consumer.beginning_offsets([source])[source]
        end = consumer.end_offsets([source])[source]
        if offset < first:
            return None, (
                f"its record at {where} is no longer retained (the partition now starts at offset {first}); "
                "only its first bytes are kept, so fetch the article again at its source"
            )
        if offset >= end:
            return None, f"its record at {where} is past the partition's end ({end}): the topic was recreated"
        consumer.assign([source])
        consumer.seek(source, offset)
        for _ in range(10):
            for record in consumer.poll(timeout_ms=_POLL_TIMEOUT_MS, max_records=1).get(source, []):
                if record.offset == offset and record.value is not None:
                    return bytes(record.value), ""
                return None, f"its record at {where} was compacted away"
        return None, f"its record at {where} could not be read within {10 * _POLL_TIMEOUT_MS} ms"


def _coordinates(letter: DeadLetter) -> str | None:
    if letter.topic is None or letter.partition is None or letter.offset is None:
        return None
    return f"{letter.topic}/{letter.partition}/{letter.offset}"
