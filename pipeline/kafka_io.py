"""Kafka reads and writes for Beam, built on kafka-python.

``ReadFromKafka`` is a splittable DoFn over each partition's offset range: bounded when
given end offsets (the local micro-batch service), unbounded otherwise (streaming
runners). ``WriteToKafka`` produces through the one durable producer (acks=all,
idempotent; ``schemas.producer``) and flushes at the end of every bundle,
so a bundle only succeeds once Kafka holds its records. A record the broker refuses (too
large, invalid) is that element's fault and leaves on the ``failures`` output; a broker
that does not acknowledge (away, no leader, timed out) fails the bundle with
``BrokerUnavailable``, so offsets are not committed and the service waits it out.

A write told that an earlier attempt at the same records may have published since a time
(``already_since_ms``: a micro-batch re-run) first reads its topic back from then, less a
clock-skew margin (``identities_on_topic``), and skips the elements whose deterministic
identity is already there; without that time it never reads back. The dead-letter writer
uses the same look-up.
"""

from __future__ import annotations

import functools
import logging
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
from apache_beam.utils.windowed_value import WindowedValue
from kafka import KafkaConsumer, TopicPartition
from kafka import errors as kafka_errors
from kafka.consumer.fetcher import ConsumerRecord

from pipeline.dead_letters import FAILURES
from pipeline.dependencies import BrokerUnavailable
from schemas.client_config import ClientConfig
from schemas.kafka_clients import range_reader
from schemas.producer import DurableProducer

log = logging.getLogger(__name__)

# Offsets are int64 in Kafka; an unbounded range ends at the largest one.
_END_OF_TIME_OFFSET = sys.maxsize
_POLL_TIMEOUT_MS = 500
# A bounded read polls in short steps: before a new consumer's first fetch is in flight,
# kafka-python sleeps out a poll's whole timeout (up to retry_backoff_ms) even once the
# connection is up, and a micro-batch opens its consumer afresh, so that sleep was on every batch.
_BOUNDED_POLL_TIMEOUT_MS = 10
# An unbounded read returns after this long, deferring the rest of its range: a bundle
# that never ends would hold the watermark, and so every window, and never finish.
_MAX_READ_S = 1.0
# How long an idle partition waits before it is polled again.
_IDLE_POLL_DELAY_S = 1.0
# Bounded ranges are split so that a runner with several workers can spread one
# partition's backlog; smaller chunks would cost a seek and a fetch each for little gain.
_SPLIT_OFFSETS = 5_000
# How far the clocks of whoever marked a time (a raw record's producer, the micro-batch
# service) and of the broker stamping output records may disagree.
DEFAULT_CLOCK_SKEW_S = 300.0
# A read-back gives up after this long without reaching the end (its caller decides what then).
_LOOKUP_TIMEOUT_S = 30.0
_LOOKUP_POLL_MS = 1_000


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()


# What the broker (or the producer's own size check) refuses because of the record itself:
# sending it again cannot succeed. Everything else a send can meet is the cluster's state.
_REFUSED_RECORD_ERRORS: tuple[type[Exception], ...] = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidRecordError,
    kafka_errors.CorruptRecordError,
    kafka_errors.InvalidTimestampError,
    kafka_errors.UnsupportedForMessageFormatError,
)


def refused_record(error: BaseException) -> bool:
    """True when Kafka refused a record for what it is, not for the cluster's state."""
    return isinstance(error, _REFUSED_RECORD_ERRORS)


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

    @property
    def size(self) -> int:
        """How many offsets the range holds; 0 for one without end."""
        return (self.stop or self.start) - self.start

    @property
    def label(self) -> str:
        """``topic/partition[start,stop)``, as logs and errors name a range."""
        return f"{self.topic}/{self.partition}[{self.start},{self.stop})"


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


def reader_config(producer_config: Mapping[str, Any], **overrides: Any) -> ClientConfig:
    """A consumer's config from a producer's: the clients' shared settings (servers, security), not its own."""
    return ClientConfig({k: v for k, v in producer_config.items() if k in KafkaConsumer.DEFAULT_CONFIG}, **overrides)


def committed_offsets(consumer: KafkaConsumer, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """Where the consumer's group resumes in each partition: its committed offset, or the
    log start when nothing is committed or a retention purge has moved past the commit."""
    partitions = list(partitions)
    beginnings = consumer.beginning_offsets(partitions)
    starts = {}
    for partition in partitions:
        offset = consumer.committed(partition)
        starts[partition] = max(offset if offset is not None else 0, beginnings[partition])
    return starts


def identities_on_topic(
    consumer: KafkaConsumer,
    topic: str,
    since_ms: Mapping[int, int],
    identity: Callable[[ConsumerRecord], str | None],
    *,
    clock_skew_s: float = DEFAULT_CLOCK_SKEW_S,
) -> set[str]:
    """The ``identity`` of every record on ``topic``'s partitions written since ``since_ms``
    (partition -> epoch ms, less ``clock_skew_s``) up to their end now; None identities are left out.

    Reassigns ``consumer``. Raises ``KafkaError`` (``KafkaTimeoutError`` after ``_LOOKUP_TIMEOUT_S``
    without progress) when it cannot read to the end: the caller decides whether to write anyway.
    """
    skew_ms = int(clock_skew_s * 1000)
    wanted = {TopicPartition(topic, p): max(0, ts - skew_ms) for p, ts in since_ms.items()}
    found: set[str] = set()
    if not wanted:
        return found
    starts = consumer.offsets_for_times(wanted)
    ends = consumer.end_offsets(list(wanted))
    to_read = {tp: at.offset for tp, at in starts.items() if at is not None and at.offset < ends[tp]}
    if not to_read:
        return found
    consumer.assign(list(to_read))
    for tp, offset in to_read.items():
        consumer.seek(tp, offset)
    deadline = time.monotonic() + _LOOKUP_TIMEOUT_S
    while any(consumer.position(tp) < ends[tp] for tp in to_read):
        polled = consumer.poll(timeout_ms=_LOOKUP_POLL_MS)
        if polled:
            deadline = time.monotonic() + _LOOKUP_TIMEOUT_S
        elif time.monotonic() > deadline:
            raise kafka_errors.KafkaTimeoutError(f"{topic} gave nothing for {_LOOKUP_TIMEOUT_S:.0f}s")
        for tp, records in polled.items():
            for record in records:
                if record.offset < ends[tp]:
                    key = identity(record)
                    if key is not None:
                        found.add(key)
    return found


# DoFn parameter markers are declared once: Beam finds them by identity in the signature.
_OFFSETS = beam.DoFn.RestrictionParam(_OffsetRangeProvider())
_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


class _ReadPartitionRange(beam.DoFn):  # type: ignore[misc]
    """Reads one partition's offset range; claims each offset before emitting its record."""

    def __init__(self, consumer_config: Mapping[str, Any], stall_timeout_s: float) -> None:
        self._consumer_config = ClientConfig(consumer_config)
        self._stall_timeout_s = stall_timeout_s
        self._records_read = Metrics.counter("kafka", "records_read")
        self._consumer: KafkaConsumer | None = None

    def setup(self) -> None:
        try:
            self._consumer = range_reader(self._consumer_config, auto_offset_reset="earliest")
        except kafka_errors.KafkaError as error:
            raise BrokerUnavailable("broker", f"cannot open a consumer: {error!r}") from error

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
            timeout_ms = _BOUNDED_POLL_TIMEOUT_MS if bounded else _POLL_TIMEOUT_MS
            polled = consumer.poll(timeout_ms=timeout_ms, max_records=500).get(partition, [])
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
                    raise BrokerUnavailable(
                        "broker",
                        f"{element.topic}[{element.partition}] returned nothing for {self._stall_timeout_s:.0f}s "
                        f"at offset {position} while offsets up to {stop} were expected; is the broker up?",
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
        self._consumer_config = ClientConfig(consumer_config)
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
        self,
        producer_config: Mapping[str, Any],
        topic: str,
        to_message: Callable[[Element], KafkaMessage],
        to_failure: Callable[[Element, BaseException], Any] | None,
        identify: Callable[[KafkaMessage], str | None] | None = None,
        already_since_ms: int | None = None,
        clock_skew_s: float = DEFAULT_CLOCK_SKEW_S,
    ) -> None:
        self._producer_config = ClientConfig(producer_config)
        self._topic = topic
        self._to_message = to_message
        self._to_failure = to_failure
        self._identify = identify
        self._already_since_ms = already_since_ms
        self._clock_skew_s = clock_skew_s
        self._written = Metrics.counter("kafka", f"written.{topic}")
        self._refused = Metrics.counter("kafka", f"refused.{topic}")
        self._skipped = Metrics.counter("kafka", f"already_written.{topic}")
        self._producer: DurableProducer | None = None
        # What an earlier attempt published since already_since_ms; read once, on the first element.
        self._already: set[str] | None = None
        # Filled by the producer's I/O thread: (element as received, error).
        self._failed: list[tuple[WindowedValue, BaseException]] = []

    def setup(self) -> None:
        try:
            self._producer = DurableProducer(self._producer_config)
        except kafka_errors.KafkaError as error:
            raise BrokerUnavailable("broker", f"cannot open a producer for {self._topic}: {error!r}") from error

    def start_bundle(self) -> None:
        self._failed = []

    def process(
        self, element: Element, window: Any = beam.DoFn.WindowParam, timestamp: Any = beam.DoFn.TimestampParam
    ) -> Iterator[Any]:
        assert self._producer is not None, "setup() opens the producer"
        held = WindowedValue(element, timestamp, (window,))
        try:
            message = self._to_message(element)
        except Exception as error:
            yield from self._settle([(held, error)])
            return
        # Outside the try: a read-back that fails is an outage (the batch re-runs), never the element's fault.
        if self._published_before(message):
            self._skipped.inc()
            return
        try:
            self._producer.send(
                self._topic,
                key=message.key,
                value=message.value,
                headers=message.headers,
                on_failure=functools.partial(self._record_failure, held),
            )
        except Exception as error:
            yield from self._settle([(held, error)])
            return
        self._written.inc()

    def _published_before(self, message: KafkaMessage) -> bool:
        """Whether an earlier attempt at these records already put ``message``'s identity on the topic."""
        if self._already_since_ms is None or self._identify is None:
            return False  # not a re-run: no read-back
        if self._already is None:
            self._already = self._read_back(self._already_since_ms)
        identity = self._identify(message)
        return identity is not None and identity in self._already

    def _read_back(self, since_ms: int) -> set[str]:
        identify = self._identify
        assert identify is not None
        reader = range_reader(reader_config(self._producer_config))
        try:
            partitions = reader.partitions_for_topic(self._topic) or set()
            found = identities_on_topic(
                reader,
                self._topic,
                dict.fromkeys(partitions, since_ms),
                lambda record: identify(KafkaMessage(record.key, record.value or b"")),
                clock_skew_s=self._clock_skew_s,
            )
        except kafka_errors.KafkaError as error:
            # Writing twice is recoverable (consumers keep the first per key); not writing is loss.
            raise BrokerUnavailable(
                "broker", f"cannot read {self._topic} back for what an earlier attempt wrote: {error!r}"
            ) from error
        finally:
            reader.close()
        log.info(
            "re-run: read back what an earlier attempt published",
            extra={"topic": self._topic, "since_ms": since_ms, "found": len(found)},
        )
        return found

    def _record_failure(self, held: WindowedValue, error: BaseException) -> None:
        # Called on the producer's I/O thread; read in finish_bundle, after the flush.
        self._failed.append((held, error))

    def finish_bundle(self) -> Iterator[Any]:
        assert self._producer is not None
        self._producer.flush()
        failed, self._failed = self._failed, []
        yield from self._settle(failed)

    def _settle(self, failed: list[tuple[WindowedValue, BaseException]]) -> Iterator[Any]:
        outages = [e for _, e in failed if isinstance(e, kafka_errors.KafkaError) and not refused_record(e)]
        if outages:
            # Failing the bundle keeps the micro-batch from committing offsets for records
            # that never reached Kafka; the service waits the broker out and re-runs it.
            raise BrokerUnavailable(
                "broker", f"{len(outages)} record(s) to {self._topic} were not acknowledged: {outages[0]!r}"
            ) from outages[0]
        for held, error in failed:
            self._refused.inc()
            failure = self._to_failure(held.value, error) if self._to_failure is not None else None
            if failure is None:
                log.error(
                    "record refused by Kafka and dropped: nothing to dead-letter it as",
                    extra={"topic": self._topic, "error": repr(error)},
                )
                continue
            yield beam.pvalue.TaggedOutput(FAILURES, held.with_value(failure))

    def teardown(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None


class WriteToKafka(beam.PTransform, Generic[Element]):  # type: ignore[misc]
    """Produce each element to ``topic`` as the message ``to_message`` makes of it.

    Outputs: the main output (empty; its watermark says what is written) and ``failures``:
    what ``to_failure`` makes of each element Kafka refused (or that ``to_message`` could
    not encode). Without ``to_failure`` a refused element is logged, counted and dropped.

    With ``already_since_ms`` (a re-run of records an earlier attempt may have published
    since then), an element whose ``identify`` is already on the topic since then, less
    ``clock_skew_s``, is skipped; ``identify`` must be deterministic across runs (never the
    value bytes, which carry processing times). A read-back that cannot reach the end fails
    the bundle as a broker outage: the service waits it out and re-runs.
    """

    def __init__(
        self,
        producer_config: Mapping[str, Any],
        topic: str,
        to_message: Callable[[Element], KafkaMessage],
        *,
        to_failure: Callable[[Element, BaseException], Any] | None = None,
        identify: Callable[[KafkaMessage], str | None] | None = None,
        already_since_ms: int | None = None,
        clock_skew_s: float = DEFAULT_CLOCK_SKEW_S,
    ) -> None:
        super().__init__()
        if already_since_ms is not None and identify is None:
            raise ValueError(f"already_since_ms needs identify: how else to tell a record of {topic} already there")
        if clock_skew_s < 0:
            raise ValueError(f"clock_skew_s must not be negative, not {clock_skew_s}")
        self._fn = _ProduceToKafka(
            producer_config, topic, to_message, to_failure, identify, already_since_ms, clock_skew_s
        )

    def expand(self, elements: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return elements | beam.ParDo(self._fn).with_outputs(FAILURES, main="written")
