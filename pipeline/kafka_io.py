"""Kafka reads and writes for Beam, built on kafka-python.

``ReadFromKafka`` is a splittable DoFn over each partition's offset range: bounded when
given end offsets (the local micro-batch service), unbounded otherwise (streaming
runners). ``WriteToKafka`` produces with acks=all and flushes at the end of every bundle,
so a bundle only succeeds once Kafka holds its records.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.runners.sdf_utils import RestrictionTrackerView
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

# Offsets are int64 in Kafka; an unbounded range ends at the largest one.
_END_OF_TIME_OFFSET = sys.maxsize
_POLL_TIMEOUT_MS = 500
# An unbounded read returns after this long, deferring the rest of its range: a bundle
# that never ends would hold the watermark, and so every window, and never finish.
_MAX_READ_S = 1.0
# How long an idle partition waits before it is polled again.
_IDLE_POLL_DELAY_S = 1.0
# Bounded ranges are split so that a runner with several workers can spread one
# partition's backlog; smaller chunks would cost a seek and a fetch each for little gain.
_SPLIT_OFFSETS = 5_000


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True)
class PartitionRange:
    """Offsets [start, stop) of one partition; ``stop=None`` reads without end."""

    topic: str
    partition: int
    start: int
    stop: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.stop is not None and self.stop < self.start):
            raise ValueError(f"invalid offset range {self}")


class _OffsetRangeProvider(RestrictionProvider):  # type: ignore[misc]
    def initial_restriction(self, element: PartitionRange) -> OffsetRange:
        return OffsetRange(element.start, element.stop if element.stop is not None else _END_OF_TIME_OFFSET)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def split(self, element: PartitionRange, restriction: OffsetRange) -> Iterator[OffsetRange]:
        if element.stop is None:
            yield restriction
        else:
            yield from restriction.split(_SPLIT_OFFSETS)

    def restriction_size(self, element: PartitionRange, restriction: OffsetRange) -> int:
        return int(restriction.size())


# DoFn parameter markers are declared once: Beam finds them by identity in the signature.
_OFFSETS = beam.DoFn.RestrictionParam(_OffsetRangeProvider())
_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


class _ReadPartitionRange(beam.DoFn):  # type: ignore[misc]
    """Reads one partition's offset range; claims each offset before emitting its record."""

    def __init__(self, consumer_config: Mapping[str, Any], stall_timeout_s: float) -> None:
        self._consumer_config = dict(consumer_config)
        self._stall_timeout_s = stall_timeout_s
        self._records_read = Metrics.counter("kafka", "records_read")
        self._consumer: KafkaConsumer | None = None

    def setup(self) -> None:
        self._consumer = KafkaConsumer(
            **self._consumer_config, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
        )

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _records(
        self, element: PartitionRange, tracker: RestrictionTrackerView, *, bounded: bool, deadline: float | None = None
    ) -> Iterator[KafkaRecord]:
        assert self._consumer is not None, "setup() opens the consumer"
        consumer = self._consumer
        partition = TopicPartition(element.topic, element.partition)
        restriction = tracker.current_restriction()
        consumer.assign([partition])
        consumer.seek(partition, restriction.start)
        last_claimed = restriction.start - 1
        idle_since = time.monotonic()
        while True:
            stop = tracker.current_restriction().stop
            if last_claimed >= stop - 1:
                return
            polled = consumer.poll(timeout_ms=_POLL_TIMEOUT_MS, max_records=500).get(partition, [])
            if not polled:
                position = consumer.position(partition)
                if position >= stop:
                    # Offsets up to stop hold no data records (compaction, transaction
                    # markers): claim the last one so the range counts as done.
                    tracker.try_claim(stop - 1)
                    return
                if not bounded:
                    return  # the caller defers the rest of the range
                if time.monotonic() - idle_since > self._stall_timeout_s:
                    raise TimeoutError(
                        f"{element.topic}[{element.partition}] returned nothing for {self._stall_timeout_s:.0f}s "
                        f"at offset {position} while offsets up to {stop} were expected; is the broker up?"
                    )
                continue
            idle_since = time.monotonic()
            for message in polled:
                if not tracker.try_claim(message.offset):
                    return
                last_claimed = message.offset
                self._records_read.inc()
                yield KafkaRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                    timestamp_ms=message.timestamp,
                    headers=tuple((k, v) for k, v in (message.headers or [])),
                )
            if deadline is not None and time.monotonic() > deadline:
                return  # the caller defers the rest of the range


class _ReadBoundedPartitionRange(_ReadPartitionRange):
    def process(
        self,
        element: PartitionRange,
        tracker: RestrictionTrackerView = _OFFSETS,  # type: ignore[assignment]
    ) -> Iterator[KafkaRecord]:
        yield from self._records(element, tracker, bounded=True)


class _ReadUnboundedPartitionRange(_ReadPartitionRange):
    """Reads for at most ``_MAX_READ_S`` at a time, then defers the rest of the range.

    Records carry the time they were read as event time, not their Kafka timestamp: a
    backlog (after a restart, or a partition whose reader starts late) holds records far
    older than the watermark that idle partitions have already advanced to, and a window
    would drop them as late. Windows here only batch the dedup GroupByKeys, so read time
    serves; ``KafkaRecord.timestamp_ms`` still says when Kafka received the record. The
    watermark trails the reader's clock by ``watermark_lag_s`` to cover clock skew
    between workers.
    """

    def __init__(self, consumer_config: Mapping[str, Any], stall_timeout_s: float, watermark_lag_s: float) -> None:
        super().__init__(consumer_config, stall_timeout_s)
        self._watermark_lag = Duration.of(watermark_lag_s)

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        element: PartitionRange,
        tracker: RestrictionTrackerView = _OFFSETS,  # type: ignore[assignment]
        watermark: ManualWatermarkEstimator = _WATERMARK,  # type: ignore[assignment]
    ) -> Iterator[TimestampedValue]:
        emitted = False
        deadline = time.monotonic() + _MAX_READ_S
        for record in self._records(element, tracker, bounded=False, deadline=deadline):
            emitted = True
            read_at = Timestamp.now()
            self._advance(watermark, read_at)
            yield TimestampedValue(record, read_at)
        # Idle or not, time moves on, so that downstream windows close.
        self._advance(watermark, Timestamp.now())
        tracker.defer_remainder(Duration.of(0 if emitted else _IDLE_POLL_DELAY_S))

    def _advance(self, watermark: ManualWatermarkEstimator, read_at: Timestamp) -> None:
        candidate = read_at - self._watermark_lag
        current = watermark.current_watermark()
        if current is None or candidate > current:
            watermark.set_watermark(candidate)


class ReadFromKafka(beam.PTransform):  # type: ignore[misc]
    """Read the given partition ranges; bounded if every range has a stop offset."""

    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        ranges: Iterable[PartitionRange],
        *,
        stall_timeout_s: float = 60.0,
        watermark_lag_s: float = 0.0,
    ) -> None:
        super().__init__()
        if watermark_lag_s < 0:
            raise ValueError(f"watermark_lag_s must not be negative, not {watermark_lag_s}")
        self._ranges = list(ranges)
        if not self._ranges:
            raise ValueError("ReadFromKafka needs at least one partition range")
        stops = {r.stop is None for r in self._ranges}
        if len(stops) > 1:
            raise ValueError("mix of bounded and unbounded ranges; give every range a stop offset or none")
        self._bounded = stops == {False}
        if self._bounded and watermark_lag_s:
            raise ValueError("watermark_lag_s applies to unbounded reads only: bounded ones have no watermark")
        self._consumer_config = dict(consumer_config)
        self._stall_timeout_s = stall_timeout_s
        self._watermark_lag_s = watermark_lag_s

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        read: _ReadPartitionRange
        if self._bounded:
            read = _ReadBoundedPartitionRange(self._consumer_config, self._stall_timeout_s)
        else:
            read = _ReadUnboundedPartitionRange(self._consumer_config, self._stall_timeout_s, self._watermark_lag_s)
        return pbegin | "PartitionRanges" >> beam.Create(self._ranges) | "ReadPartitions" >> beam.ParDo(read)


Element = TypeVar("Element")


@dataclass(frozen=True)
class KafkaMessage:
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class _ProduceToKafka(beam.DoFn, Generic[Element]):  # type: ignore[misc]
    def __init__(
        self, producer_config: Mapping[str, Any], topic: str, to_message: Callable[[Element], KafkaMessage]
    ) -> None:
        self._producer_config = dict(producer_config)
        self._topic = topic
        self._to_message = to_message
        self._written = Metrics.counter("kafka", f"written.{topic}")
        self._producer: KafkaProducer | None = None
        self._failures: list[BaseException] = []

    def setup(self) -> None:
        self._producer = KafkaProducer(**self._producer_config, acks="all", enable_idempotence=True, linger_ms=20)

    def process(self, element: Element) -> None:
        assert self._producer is not None, "setup() opens the producer"
        message = self._to_message(element)
        future = self._producer.send(self._topic, key=message.key, value=message.value, headers=list(message.headers))
        future.add_errback(self._failures.append)
        self._written.inc()

    def finish_bundle(self) -> None:
        assert self._producer is not None
        self._producer.flush()
        if self._failures:
            failures, self._failures = self._failures, []
            # Failing the bundle makes the runner retry it, and keeps the micro-batch
            # from committing offsets for records that never reached Kafka.
            raise RuntimeError(f"{len(failures)} record(s) to {self._topic} were not acknowledged: {failures[0]!r}")

    def teardown(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None


class WriteToKafka(beam.PTransform, Generic[Element]):  # type: ignore[misc]
    """Produce each element to ``topic`` as the message ``to_message`` makes of it."""

    def __init__(
        self, producer_config: Mapping[str, Any], topic: str, to_message: Callable[[Element], KafkaMessage]
    ) -> None:
        super().__init__()
        self._fn = _ProduceToKafka(producer_config, topic, to_message)

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        return elements | beam.ParDo(self._fn)
