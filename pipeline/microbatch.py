"""The local continuous service: bounded Beam pipelines over successive Kafka offset ranges.

No local Beam runner runs a Python unbounded source well, so the service repeats: read the
raw topic's committed and end offsets, run the pipeline over [committed, end) (capped per
partition), and commit the ends only after the pipeline, and so every sink, has finished.
A crash between the two re-runs the batch; the sinks and the dedup index are idempotent,
so nothing is lost and nothing is written twice. The same graph runs unbounded on a
streaming runner; only this loop is local.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.graph import PipelineConfig, build_pipeline
from pipeline.kafka_io import PartitionRange, ReadFromKafka

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchReport:
    ranges: tuple[PartitionRange, ...]
    duration_s: float
    counters: Mapping[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum((r.stop or r.start) - r.start for r in self.ranges)


class BatchFailed(RuntimeError):
    """The pipeline did not finish; offsets were not committed and the batch will re-run."""


class MicroBatchService:
    def __init__(
        self,
        *,
        consumer_config: Mapping[str, Any],
        raw_topic: str,
        consumer_group: str,
        config: PipelineConfig,
        beam_args: list[str],
        max_batch_records: int,
        interval_s: float,
        on_batch: Callable[[BatchReport], None] | None = None,
        parallel_beam_args: list[str] | None = None,
        parallel_min_records: int = 1,
    ) -> None:
        if max_batch_records < 1:
            raise ValueError("max_batch_records must be positive")
        self._consumer_config = dict(consumer_config)
        self._raw_topic = raw_topic
        self._config = config
        self._beam_args = list(beam_args)
        # Batches of at least parallel_min_records records run with these (worker processes).
        self._parallel_beam_args = list(parallel_beam_args) if parallel_beam_args else None
        self._parallel_min_records = parallel_min_records
        self._max_batch_records = max_batch_records
        self._interval_s = interval_s
        self._on_batch = on_batch
        self._offsets = KafkaConsumer(**self._consumer_config, group_id=consumer_group, enable_auto_commit=False)

    def close(self) -> None:
        self._offsets.close()

    def _partitions(self) -> list[TopicPartition]:
        partitions = self._offsets.partitions_for_topic(self._raw_topic)
        if not partitions:
            raise RuntimeError(f"topic {self._raw_topic!r} does not exist; run `newswire topics create` first")
        return [TopicPartition(self._raw_topic, p) for p in sorted(partitions)]

    def end_offsets(self) -> dict[TopicPartition, int]:
        return dict(self._offsets.end_offsets(self._partitions()))

    def committed_offsets(self) -> dict[TopicPartition, int]:
        partitions = self._partitions()
        beginnings = self._offsets.beginning_offsets(partitions)
        committed = {}
        for partition in partitions:
            offset = self._offsets.committed(partition)
            # A retention purge can move the log start past our commit: start at what exists.
            committed[partition] = max(offset if offset is not None else 0, beginnings[partition])
        return committed

    def plan_batch(self, targets: Mapping[TopicPartition, int] | None = None) -> list[PartitionRange]:
        """Ranges from the committed offsets to ``targets`` (default: the end), capped."""
        ends = targets if targets is not None else self.end_offsets()
        ranges = []
        for partition, start in self.committed_offsets().items():
            stop = min(ends.get(partition, start), start + self._max_batch_records)
            if stop > start:
                ranges.append(PartitionRange(partition.topic, partition.partition, start, stop))
        return ranges

    def run_batch(self, ranges: list[PartitionRange]) -> BatchReport:
        started = time.monotonic()
        options = PipelineOptions(self.beam_args_for(ranges))
        pipeline = beam.Pipeline(options=options)
        build_pipeline(pipeline, ReadFromKafka(self._consumer_config, ranges), self._config)
        result = pipeline.run()
        state = result.wait_until_finish()
        if state != PipelineState.DONE:
            raise BatchFailed(f"pipeline ended in state {state} for ranges {ranges}")
        # Only now, with every sink flushed, may the batch count as consumed.
        self._offsets.commit({TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.stop, "", -1) for r in ranges})
        report = BatchReport(tuple(ranges), time.monotonic() - started, _counters(result))
        log.info(
            "batch committed",
            extra={"records": report.records, "duration_s": round(report.duration_s, 3), "counters": report.counters},
        )
        if self._on_batch:
            self._on_batch(report)
        return report

    def beam_args_for(self, ranges: list[PartitionRange]) -> list[str]:
        """The Beam options a batch of these ranges runs with: worker processes only if it is large enough."""
        records = sum((r.stop or r.start) - r.start for r in ranges)
        if self._parallel_beam_args is not None and records >= self._parallel_min_records:
            return self._parallel_beam_args
        return self._beam_args

    def run(self, *, until_caught_up: bool, stop: threading.Event) -> list[BatchReport]:
        """Run batches until ``stop`` is set (or, with ``until_caught_up``, until the
        offsets seen at start are consumed). A batch in flight always finishes first."""
        targets = self.end_offsets() if until_caught_up else None
        reports = []
        while not stop.is_set():
            ranges = self.plan_batch(targets)
            if not ranges:
                if until_caught_up:
                    break
                stop.wait(self._interval_s)
                continue
            reports.append(self.run_batch(ranges))
        return reports


def _counters(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    totals: dict[str, int] = {}
    try:
        counters = result.metrics().query()["counters"]
    except (NotImplementedError, AttributeError):  # some runners do not report metrics
        return totals
    for counter in counters:
        name = f"{counter.key.metric.namespace}.{counter.key.metric.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[name] = totals.get(name, 0) + int(value or 0)
    return totals
