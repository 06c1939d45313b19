"""The pipeline as one unbounded job on a streaming runner (Flink, Dataflow).

The same graph as the micro-batch service (``pipeline.graph.build_pipeline``), fed by the
unbounded ``ReadFromKafka`` from the consumer group's committed offsets. Offsets are
committed by ``CommitWrittenOffsets`` as the job goes, and only for records whose every
write has finished: a restart, or a switch back to micro-batches, resumes where the
writes end. The sinks and the dedup index are idempotent, so records after the last
commit that had been written already are simply written again.

The output topics hold at least once here, driven by the runner's checkpoints: there are
no batches, so no attempt marks and no read-back (``PipelineConfig.rerun_since_ms`` stays
unset; that is the micro-batch service's). Records published after the last commit (or
checkpoint) are published again after a restart, with the same identity and key, and
consumers keep the first record per key (``docs/topics.md``).

How "written" is known without the writes reporting back: every write (each sink and
each Kafka topic) is a ParDo whose bundles flush before they end, and a runner moves a
stage's output watermark past a time only once it has finished every bundle holding
earlier elements. The commit stage reads those write stages' (empty) outputs beside
each record's offset; once its input watermark passes the end of a record's window, the
window has fired through dedup and every write has flushed it.

This module must never commit an offset on behalf of a record that a write may still
hold, and never run on a runner without a real unbounded read (see pipeline.runners).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.coders import TupleCoder, VarIntCoder
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    RuntimeTimer,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import FixedWindows, GlobalWindows, IntervalWindow
from apache_beam.utils.timestamp import Timestamp
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.graph import PipelineConfig, build_pipeline
from pipeline.kafka_io import KafkaRecord, PartitionRange, ReadFromKafka, WriteToKafka, committed_offsets
from pipeline.sinks.base import WriteToSink
from schemas.client_config import ClientConfig

log = logging.getLogger(__name__)

_TERMINAL: frozenset[str] = frozenset(
    {PipelineState.DONE, PipelineState.FAILED, PipelineState.CANCELLED, PipelineState.UPDATED}
)
_STATE_POLL_S = 2.0
_CANCEL_TIMEOUT_S = 60.0

# (offset, micros at which the record's window has been written) per topic partition.
_Position = tuple[int, int]

_PENDING = BagStateSpec("pending", TupleCoder((VarIntCoder(), VarIntCoder())))
_NEXT_DUE = ReadModifyWriteStateSpec("next_due", VarIntCoder())
_COMMITTED = ReadModifyWriteStateSpec("committed", VarIntCoder())
_WRITTEN = TimerSpec("written", TimeDomain.WATERMARK)
# DoFn parameter markers are declared once: Beam finds them by identity in the signature.
_PENDING_STATE = beam.DoFn.StateParam(_PENDING)
_NEXT_DUE_STATE = beam.DoFn.StateParam(_NEXT_DUE)
_COMMITTED_STATE = beam.DoFn.StateParam(_COMMITTED)
_WRITTEN_TIMER = beam.DoFn.TimerParam(_WRITTEN)


class _CommitWhenWritten(beam.DoFn):  # type: ignore[misc]
    """Per partition: holds the offsets read, commits past those whose window is written.

    Keyed by "topic:partition" and in the global window, so one timer per partition walks
    forward with the watermark. Elements of one partition arrive in offset order (one
    reader, one key), so the commit point is the first offset still waiting, or one past
    the last written when none waits.
    """

    def __init__(self, consumer_config: Mapping[str, Any], consumer_group: str) -> None:
        self._consumer_config = ClientConfig(consumer_config)
        self._consumer_group = consumer_group
        self._consumer: KafkaConsumer | None = None

    def setup(self) -> None:
        # Never subscribes: it only commits the group's offsets, as the micro-batch service does.
        self._consumer = KafkaConsumer(**self._consumer_config, group_id=self._consumer_group, enable_auto_commit=False)

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def process(
        self,
        element: tuple[str, _Position],
        pending: Any = _PENDING_STATE,
        next_due: Any = _NEXT_DUE_STATE,
        written: RuntimeTimer = _WRITTEN_TIMER,  # type: ignore[assignment]
    ) -> None:
        _, (offset, due_micros) = element
        pending.add((offset, due_micros))
        scheduled = next_due.read()
        if scheduled is None or due_micros < scheduled:
            written.set(Timestamp(micros=due_micros))
            next_due.write(due_micros)

    @on_timer(_WRITTEN)
    def commit(
        self,
        key: str = beam.DoFn.KeyParam,  # type: ignore[assignment]
        fired_at: Timestamp = beam.DoFn.TimestampParam,  # type: ignore[assignment]
        pending: Any = _PENDING_STATE,
        next_due: Any = _NEXT_DUE_STATE,
        committed: Any = _COMMITTED_STATE,
        written: RuntimeTimer = _WRITTEN_TIMER,  # type: ignore[assignment]
    ) -> None:
        positions: list[_Position] = list(pending.read())
        done = [offset for offset, due in positions if due <= fired_at.micros]
        waiting = [(offset, due) for offset, due in positions if due > fired_at.micros]
        pending.clear()
        for position in waiting:
            pending.add(position)
        if waiting:
            due_next = min(due for _, due in waiting)
            written.set(Timestamp(micros=due_next))
            next_due.write(due_next)
        else:
            next_due.clear()
        if not done:
            return
        commit_point = min([offset for offset, _ in waiting] + [max(done) + 1])
        previous = committed.read()
        if previous is not None and commit_point <= previous:
            return
        topic, _, partition = key.rpartition(":")
        assert self._consumer is not None, "setup() opens the consumer"
        self._consumer.commit({TopicPartition(topic, int(partition)): OffsetAndMetadata(commit_point, "", -1)})
        committed.write(commit_point)


class CommitWrittenOffsets(beam.PTransform):  # type: ignore[misc]
    """Commit the consumer group's offsets of ``records`` once ``writes`` have written them.

    ``writes`` are the outputs of every write of the graph; ``window_s`` is the graph's
    streaming window, whose end is when a record's results can first leave dedup.
    """

    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        consumer_group: str,
        writes: Sequence[beam.PCollection],
        window_s: float,
    ) -> None:
        super().__init__()
        if not writes:
            raise ValueError("CommitWrittenOffsets needs the graph's writes to wait for")
        self._fn = _CommitWhenWritten(consumer_config, consumer_group)
        self._writes = list(writes)
        self._window_s = window_s

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        positions = (
            records
            | "WindowLikeTheGraph" >> beam.WindowInto(FixedWindows(self._window_s))
            | "Position" >> beam.Map(_position)
            | "ToGlobalWindow" >> beam.WindowInto(GlobalWindows())
        )
        written = [
            write | f"Written{index}" >> beam.WindowInto(GlobalWindows()) for index, write in enumerate(self._writes)
        ]
        return (
            (positions, *written)
            | "AfterTheWrites" >> beam.Flatten().with_output_types(tuple[str, tuple[int, int]])
            | "Commit" >> beam.ParDo(self._fn)
        )


def _position(
    record: KafkaRecord,
    window: IntervalWindow = beam.DoFn.WindowParam,  # type: ignore[assignment]
) -> tuple[str, _Position]:
    return f"{record.topic}:{record.partition}", (record.offset, window.end.micros)


class _KeepOutput(beam.PTransform):  # type: ignore[misc]
    """Applies ``transform`` and keeps its output, for a second consumer outside the graph."""

    def __init__(self, transform: beam.PTransform) -> None:
        super().__init__()
        self._transform = transform
        self.output: beam.PCollection | None = None

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        self.output = pbegin | self._transform
        return self.output


def graph_writes(pipeline: beam.Pipeline) -> list[beam.PCollection]:
    """The outputs of every sink and Kafka write in ``pipeline``, found by their transform type."""
    found: list[beam.PCollection] = []

    class _Writes(beam.pipeline.PipelineVisitor):  # type: ignore[misc]
        def enter_composite_transform(self, node: beam.pipeline.AppliedPTransform) -> None:
            if isinstance(node.transform, (WriteToSink, WriteToKafka)):
                found.extend(output for output in node.outputs.values() if isinstance(output, beam.PCollection))

    pipeline.visit(_Writes())
    return found


def resume_ranges(consumer: KafkaConsumer, topic: str) -> list[PartitionRange]:
    """Unbounded ranges of every partition of ``topic`` from the group's committed offsets."""
    partition_ids = consumer.partitions_for_topic(topic)
    if not partition_ids:
        raise RuntimeError(f"topic {topic!r} does not exist; run `newswire topics create` first")
    partitions = [TopicPartition(topic, p) for p in sorted(partition_ids)]
    starts = committed_offsets(consumer, partitions)
    return [PartitionRange(topic, partition.partition, starts[partition]) for partition in partitions]


class StreamingService:
    """Submits the unbounded job and watches it until it ends or ``stop`` is set."""

    def __init__(
        self,
        *,
        consumer_config: Mapping[str, Any],
        raw_topic: str,
        consumer_group: str,
        config: PipelineConfig,
        beam_args: Iterable[str],
        watermark_lag_s: float,
    ) -> None:
        if not config.streaming_window_s:
            raise ValueError("streaming needs config.streaming_window_s: dedup groups by key within windows")
        self._consumer_config = ClientConfig(consumer_config)
        self._raw_topic = raw_topic
        self._consumer_group = consumer_group
        self._config = config
        self._beam_args = list(beam_args)
        self._watermark_lag_s = watermark_lag_s

    def resume_ranges(self) -> list[PartitionRange]:
        consumer = KafkaConsumer(**self._consumer_config, group_id=self._consumer_group, enable_auto_commit=False)
        try:
            return resume_ranges(consumer, self._raw_topic)
        finally:
            consumer.close()

    def build(self, pipeline: beam.Pipeline, ranges: Sequence[PartitionRange]) -> None:
        read = _KeepOutput(ReadFromKafka(self._consumer_config, ranges, watermark_lag_s=self._watermark_lag_s))
        build_pipeline(pipeline, read, self._config)
        assert read.output is not None, "build_pipeline applies the source"
        assert self._config.streaming_window_s is not None
        _ = read.output | "CommitWrittenOffsets" >> CommitWrittenOffsets(
            self._consumer_config, self._consumer_group, graph_writes(pipeline), self._config.streaming_window_s
        )

    def start(self) -> PipelineResult:
        ranges = self.resume_ranges()
        log.info("streaming from committed offsets", extra={"ranges": [f"{r.partition}@{r.start}" for r in ranges]})
        pipeline = beam.Pipeline(options=PipelineOptions(self._beam_args))
        self.build(pipeline, ranges)
        return pipeline.run()

    def run(self, stop: threading.Event) -> str:
        """Run until the job ends by itself or ``stop`` is set; then cancel it and return its state."""
        result = self.start()
        for state in _states(result, stop):
            if state in _TERMINAL:
                if state != PipelineState.DONE:
                    raise RuntimeError(f"the streaming job ended in state {state}; see the runner's log")
                return state
        # Offsets of records not yet written stay uncommitted: the next start reads them again.
        result.cancel()
        deadline = time.monotonic() + _CANCEL_TIMEOUT_S
        while (state := result.state) not in _TERMINAL and time.monotonic() < deadline:
            time.sleep(_STATE_POLL_S / 4)
        return state


def _states(result: PipelineResult, stop: threading.Event) -> Iterator[str]:
    while not stop.wait(_STATE_POLL_S):
        yield result.state
