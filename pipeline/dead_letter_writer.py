"""Writing the pipeline's dead letters: what cannot be written becomes a dead letter, and each
dead letter is published once.

``RefuseOversized`` is the last check before the writes: an element whose encoded record
would be over its topic's limit leaves as a ``too_large`` dead letter instead of failing
the write (and with it the batch) at Kafka. ``WriteDeadLetters`` trims each dead letter
to fit the dead-letter topic, keys it by its deterministic ``dead_letter_id`` and, before
producing, skips the ones an earlier run of the same records already wrote: a batch that
re-runs after a crash between its dead-letter write and its offset commit publishes
nothing twice. The look-up is bounded by time: a dead letter for a raw record is written
after that record, so only the dead-letter partition's records since then (less
``clock_skew_s``) are read. A dead letter without coordinates, or whose raw record is no
longer retained, is written without the look-up; consumers drop repeats by key
(``docs/topics.md``).

This module must never drop a dead letter it has not found on the topic (the one
exception: a record Kafka refuses for what it is, which only a topic configured below the
limits can do; it is logged with its id and counted), and never fail a batch over the
look-up: when it cannot look, it writes. A broker that does not acknowledge is an outage
(``BrokerUnavailable``): the service waits it out and re-runs the batch.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from pipeline.dead_letters import FAILURES, StageFailure
from pipeline.dependencies import BrokerUnavailable
from pipeline.kafka_io import DEFAULT_CLOCK_SKEW_S, identities_on_topic, reader_config, refused_record
from schemas import DeadLetter, EnrichedArticle, encode, record_headers
from schemas.client_config import ClientConfig
from schemas.dead_letter import fit_dead_letter
from schemas.kafka_clients import range_reader
from schemas.producer import DurableProducer

log = logging.getLogger(__name__)

_POLL_TIMEOUT_MS = 1_000


class _RefuseOversized(beam.DoFn):  # type: ignore[misc]
    def __init__(self, max_record_bytes: int, limit_name: str) -> None:
        self._max_record_bytes = max_record_bytes
        self._limit_name = limit_name

    def process(self, article: EnrichedArticle) -> Iterator[Any]:
        size = len(encode(article))
        if size <= self._max_record_bytes:
            yield article
            return
        # A failure, not a dead letter yet: LocateFailures gives it the raw record's coordinates.
        yield beam.pvalue.TaggedOutput(
            FAILURES,
            StageFailure.of(
                article,
                stage="encode",
                error_type="too_large",
                error=f"EnrichedArticle {article.article_id}: its record is {size} bytes, over "
                f"{self._limit_name}={self._max_record_bytes}; raise that limit (every topic and client limit "
                "follows it) and replay the article",
            ),
        )


class RefuseOversized(beam.PTransform):  # type: ignore[misc]
    """Articles whose encoded record fits ``max_record_bytes`` (main output ``fitting``), the others as
    ``too_large`` stage failures (output ``FAILURES``)."""

    def __init__(self, max_record_bytes: int, *, limit_name: str) -> None:
        super().__init__()
        if max_record_bytes < 1:
            raise ValueError(f"max_record_bytes must be positive, not {max_record_bytes}")
        self._fn = _RefuseOversized(max_record_bytes, limit_name)

    def expand(self, articles: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return articles | beam.ParDo(self._fn).with_outputs(FAILURES, main="fitting")


def _append_failure(failed: list[tuple[str, BaseException]], dead_letter_id: str, error: BaseException) -> None:
    failed.append((dead_letter_id, error))


def _record_key(record: ConsumerRecord) -> str | None:
    # A dead letter's key is its deterministic dead_letter_id.
    return record.key.decode("utf-8", "replace") if record.key is not None else None


def dead_letter_partition(dead_letter_id: str, partitions: int) -> int:
    """The partition a record keyed by ``dead_letter_id`` goes to under Kafka's default partitioner."""
    return (murmur2(dead_letter_id.encode("utf-8")) & 0x7FFFFFFF) % partitions


class _WriteDeadLetters(beam.DoFn):  # type: ignore[misc]
    def __init__(
        self,
        producer_config: Mapping[str, Any],
        topic: str,
        max_record_bytes: int,
        clock_skew_s: float,
    ) -> None:
        # Frozen configs that mask the SASL password: both travel pickled in this DoFn's state.
        self._producer_config = ClientConfig(producer_config)
        # A consumer takes the clients' shared settings (servers, security), not the producer's own.
        self._consumer_config = reader_config(producer_config, max_partition_fetch_bytes=2 * max_record_bytes)
        self._topic = topic
        self._max_record_bytes = max_record_bytes
        self._clock_skew_s = clock_skew_s
        self._written = Metrics.counter("dead_letter_writes", "written")
        self._skipped = Metrics.counter("dead_letter_writes", "already_written")
        self._refused = Metrics.counter("dead_letter_writes", "refused")
        self._producer: DurableProducer | None = None
        self._consumer: KafkaConsumer | None = None
        self._pending: dict[str, DeadLetter] = {}

    def setup(self) -> None:
        self._producer = DurableProducer(self._producer_config)
        self._consumer = range_reader(self._consumer_config)

    def start_bundle(self) -> None:
        self._pending = {}

    def process(self, dead_letter: DeadLetter) -> None:
        fitted = fit_dead_letter(dead_letter, self._max_record_bytes)
        # The same id twice in one bundle is the same failure: one record.
        self._pending.setdefault(fitted.dead_letter_id or f"unkeyed-{len(self._pending)}", fitted)

    def finish_bundle(self) -> None:
        assert self._producer is not None and self._consumer is not None, "setup() opens the clients"
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            partitions = sorted(self._consumer.partitions_for_topic(self._topic) or [])
        except KafkaError as error:
            raise BrokerUnavailable("broker", f"no metadata for {self._topic}: {error!r}") from error
        if not partitions:
            raise BrokerUnavailable(
                "broker", f"dead-letter topic {self._topic!r} has no partitions; run `newswire topics create`"
            )
        already = self._already_written(pending, len(partitions))
        failed: list[tuple[str, BaseException]] = []
        for dead_letter_id, dead_letter in pending.items():
            if dead_letter_id in already:
                self._skipped.inc()
                continue
            keyed = dead_letter.dead_letter_id is not None
            self._producer.send(
                self._topic,
                key=dead_letter_id.encode("utf-8") if keyed else None,
                value=encode(dead_letter),
                headers=record_headers(dead_letter),
                partition=dead_letter_partition(dead_letter_id, len(partitions)) if keyed else None,
                on_failure=functools.partial(_append_failure, failed, dead_letter_id),
            )
            self._written.inc()
        self._producer.flush()
        outages = [problem for _, problem in failed if not refused_record(problem)]
        if outages:
            # Failing the bundle keeps the micro-batch from committing offsets for dead
            # letters that never reached Kafka; the service waits the broker out.
            raise BrokerUnavailable(
                "broker", f"{len(outages)} dead letter(s) to {self._topic} not acknowledged: {outages[0]!r}"
            ) from outages[0]
        for refused_id, refusal in failed:
            self._refused.inc()
            log.error(
                "dead letter refused by Kafka; is the topic set below limits.max_dead_letter_bytes? "
                "run `newswire topics create`",
                extra={"topic": self._topic, "dead_letter_id": refused_id, "error": repr(refusal)},
            )

    def _already_written(self, pending: Mapping[str, DeadLetter], partitions: int) -> set[str]:
        """Which of ``pending``'s ids are on the dead-letter topic since their raw records were written."""
        since: dict[int, int] = {}
        for dead_letter_id, dead_letter in pending.items():
            written_at = self._raw_timestamp_ms(dead_letter)
            if written_at is None:
                continue
            partition = dead_letter_partition(dead_letter_id, partitions)
            since[partition] = min(since.get(partition, written_at), written_at)
        if not since:
            return set()
        try:
            return identities_on_topic(self._consumer, self._topic, since, _record_key, clock_skew_s=self._clock_skew_s)
        except KafkaError as error:
            log.warning(
                "could not look for dead letters already written; writing them (consumers drop repeats by key)",
                extra={"topic": self._topic, "error": repr(error)},
            )
            return set()

    def _raw_timestamp_ms(self, dead_letter: DeadLetter) -> int | None:
        """When the record the dead letter is about was written to its topic, if it is still there."""
        assert self._consumer is not None
        if dead_letter.topic is None or dead_letter.partition is None or dead_letter.offset is None:
            return None
        source = TopicPartition(dead_letter.topic, dead_letter.partition)
        try:
            self._consumer.assign([source])
            self._consumer.seek(source, dead_letter.offset)
            for record in self._consumer.poll(timeout_ms=_POLL_TIMEOUT_MS, max_records=1).get(source, []):
                if record.offset == dead_letter.offset:
                    return int(record.timestamp)
        except KafkaError:
            return None
        return None

    def teardown(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class WriteDeadLetters(beam.PTransform):  # type: ignore[misc]
    """Publish each dead letter once to ``topic``: trimmed to ``max_record_bytes``, keyed by ``dead_letter_id``."""

    def __init__(
        self,
        producer_config: Mapping[str, Any],
        topic: str,
        *,
        max_record_bytes: int,
        clock_skew_s: float = DEFAULT_CLOCK_SKEW_S,
    ) -> None:
        super().__init__()
        if max_record_bytes < 1 or clock_skew_s < 0:
            raise ValueError("max_record_bytes must be positive and clock_skew_s not negative")
        self._fn = _WriteDeadLetters(producer_config, topic, max_record_bytes, clock_skew_s)

    def expand(self, dead_letters: beam.PCollection) -> beam.PCollection:
        return dead_letters | beam.ParDo(self._fn)
