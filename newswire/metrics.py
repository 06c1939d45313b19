"""Prometheus metrics of every newswire process: the pipeline, the ingest service (with all its
fetch workers), and the console's quality monitor. ``docs/metrics.md`` lists them.

Each service builds its own ``CollectorRegistry`` (never the global one, so two services in one
process or one test never collide) and serves it with ``newswire.health.ServiceEndpoint``.
The pipeline's figures come from Beam counters (``BatchReport.counters``, named by
``pipeline.metering`` and the stages); this module only names them for Prometheus. Fetch
workers, threads or processes, send their events to the ingest service's process, which
counts them here: one endpoint covers every worker.
This module must never decide anything about the data: it counts what the components report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:  # the console and ingest import this module: they must not pay for importing Beam
    from pipeline.microbatch import BatchReport

log = logging.getLogger(__name__)

# Buckets of one micro-batch's wall time: a batch takes from a fraction of a second
# (a handful of records) to minutes (a full 20,000-record catch-up).
BATCH_SECONDS_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class PipelineMetrics:
    """What the micro-batch pipeline did, batch by batch, and how far behind the raw topic it is."""

    def __init__(self, registry: CollectorRegistry | None = None, *, dead_letter_topic: str = "dead_letter") -> None:
        self.registry = registry or CollectorRegistry()
        self._dead_letter_topic = dead_letter_topic
        r = self.registry
        self.batches = Counter("newswire_batches_total", "Micro-batches committed.", registry=r)
        self.records = Counter("newswire_records_consumed_total", "Raw records consumed and committed.", registry=r)
        self.batch_seconds = Histogram(
            "newswire_batch_duration_seconds",
            "Wall time of one micro-batch, from planning to the offset commit.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        self.batch_cpu = Counter(
            "newswire_batch_cpu_seconds_total",
            "CPU seconds of the pipeline's process and its batch worker processes, over committed micro-batches.",
            registry=r,
        )
        self.last_batch = Gauge(
            "newswire_last_batch_timestamp_seconds", "Unix time the last micro-batch committed.", registry=r
        )
        self.stage_records = Counter(
            "newswire_stage_records_total",
            "Records into (direction=in) and out of (direction=out) each pipeline stage.",
            ["stage", "direction"],
            registry=r,
        )
        self.originals = Counter("newswire_dedup_originals_total", "Articles kept as originals by dedup.", registry=r)
        self.updates = Counter(
            "newswire_dedup_updates_total",
            "Originals that are a new version (changed body) of a known article.",
            registry=r,
        )
        self.duplicates = Counter(
            "newswire_dedup_duplicates_total", "Duplicate notices of arrivals, by dedup layer.", ["layer"], registry=r
        )
        self.demoted = Counter(
            "newswire_dedup_demoted_total",
            "Published articles withdrawn as copies of a later-decided original, by layer.",
            ["layer"],
            registry=r,
        )
        self.dead_letters = Counter(
            "newswire_dead_letters_total",
            "Dead letters published, by stage and error type.",
            ["stage", "error_type"],
            registry=r,
        )
        self.sink_records = Counter(
            "newswire_sink_records_total",
            "Articles written to (or withdrawn from) each sink.",
            ["sink", "action"],
            registry=r,
        )
        self.sink_errors = Counter(
            "newswire_sink_write_errors_total", "Sink writes that raised (the bundle is retried).", ["sink"], registry=r
        )
        self.sink_write_seconds = Counter(
            "newswire_sink_write_seconds_total",
            "Time spent in sink writes; divide by writes for the mean.",
            ["sink"],
            registry=r,
        )
        self.sink_writes = Counter("newswire_sink_writes_total", "Sink write calls (batches).", ["sink"], registry=r)
        self.topic_records = Counter(
            "newswire_topic_records_written_total", "Records the pipeline published, by topic.", ["topic"], registry=r
        )
        self.beam_counters = Counter(
            "newswire_pipeline_counter_total",
            "Every Beam counter of the pipeline, by its full name.",
            ["counter"],
            registry=r,
        )
        self.lag = Gauge(
            "newswire_consumer_lag_records",
            "Records on the raw topic not yet committed by the pipeline's consumer group, per partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.index_bytes = Gauge(
            "newswire_dedup_index_bytes", "Size on disk of the embedded dedup index (with its WAL).", registry=r
        )

    def observe_batch(self, report: BatchReport) -> None:
        self.batches.inc()
        self.records.inc(report.records)
        self.batch_seconds.observe(report.duration_s)
        self.batch_cpu.inc(report.cpu_s)
        self.last_batch.set_to_current_time()
        for name, value in report.counters.items():
            self.beam_counters.labels(counter=name).inc(value)
            self._named(name, value)

    def _named(self, name: str, value: int) -> None:
        """Give the counters of ``pipeline.metering``, the dedup stage and the sinks their own metrics."""
        namespace, _, rest = name.partition(".")
        if namespace == "stage":
            stage, _, direction = rest.rpartition(".")
            self.stage_records.labels(stage=stage, direction=direction).inc(value)
        elif namespace == "kafka" and rest == "records_read":
            self.stage_records.labels(stage="read", direction="out").inc(value)
        elif namespace == "kafka" and rest.startswith("written."):
            self.topic_records.labels(topic=rest.removeprefix("written.")).inc(value)
        elif name == "dead_letter_writes.written":  # the dead-letter writer publishes each one once
            self.topic_records.labels(topic=self._dead_letter_topic).inc(value)
        elif name == "dedup.originals":
            self.originals.inc(value)
        elif name == "dedup.updates":
            self.updates.inc(value)
        elif namespace == "duplicates":
            self.duplicates.labels(layer=rest).inc(value)
        elif namespace == "demoted":
            self.demoted.labels(layer=rest).inc(value)
        elif namespace == "dead_letter":
            stage, _, error_type = rest.partition(".")
            self.dead_letters.labels(stage=stage, error_type=error_type or "unknown").inc(value)
        elif namespace == "sink":
            sink, _, action = rest.rpartition(".")
            self.sink_records.labels(sink=sink, action=action).inc(value)
        elif namespace == "sink_errors":
            self.sink_errors.labels(sink=rest).inc(value)
        elif namespace == "sink_latency":
            sink, _, what = rest.rpartition(".")
            if what == "ms":
                self.sink_write_seconds.labels(sink=sink).inc(value / 1000)
            elif what == "writes":
                self.sink_writes.labels(sink=sink).inc(value)

    def observe_lag(self, topic: str, committed: Mapping[int, int], ends: Mapping[int, int]) -> None:
        for partition, end in ends.items():
            self.lag.labels(topic=topic, partition=str(partition)).set(max(0, end - committed.get(partition, 0)))

    def watch_index(self, path: Path | None) -> None:
        """Report the embedded index's size at every scrape (nothing for a Redis index)."""
        if path is not None:
            self.index_bytes.set_function(lambda: _file_bytes([path, path.with_name(path.name + "-wal")]))


class ConsumerLag:
    """Polls a consumer group's committed offsets against a topic's end offsets, in a thread."""

    def __init__(
        self,
        consumer_config: Mapping[str, Any],
        topic: str,
        group: str,
        report: Callable[[str, Mapping[int, int], Mapping[int, int]], None],
        *,
        interval_s: float,
    ) -> None:
        self._consumer_config = dict(consumer_config)
        self._topic = topic
        self._group = group
        self._report = report
        self._interval_s = interval_s
        self._wake = threading.Event()

    def wake(self) -> None:
        """Measure now (a batch just committed) rather than at the next interval."""
        self._wake.set()

    def measure(self) -> tuple[dict[int, int], dict[int, int]]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(**self._consumer_config, group_id=self._group, enable_auto_commit=False)
        try:
            partitions = [
                TopicPartition(self._topic, p) for p in sorted(consumer.partitions_for_topic(self._topic) or [])
            ]
            ends = {p.partition: offset for p, offset in consumer.end_offsets(partitions).items()}
            committed = {p.partition: consumer.committed(p) or 0 for p in partitions}
        finally:
            consumer.close()
        return committed, ends

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                committed, ends = self.measure()
            except Exception as error:  # the broker being down shows in /readyz, not as a crash here
                log.debug("consumer lag not measured", extra={"topic": self._topic, "error": str(error)})
            else:
                self._report(self._topic, committed, ends)
            self._wake.wait(self._interval_s)
            self._wake.clear()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="newswire-lag", daemon=True)
        thread.start()
        return thread


class IngestMetrics:
    """The ingest service's own figures: polls and the schedule of every source, and the archive."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.polls = Counter("newswire_polls_total", "Source polls by outcome.", ["source", "outcome"], registry=r)
        self.entries_queued = Counter(
            "newswire_poll_entries_queued_total",
            "New entries queued as page fetches, by source.",
            ["source"],
            registry=r,
        )
        self.next_poll = Gauge(
            "newswire_source_next_poll_timestamp_seconds", "Unix time each source is next due.", ["source"], registry=r
        )
        self.last_success = Gauge(
            "newswire_source_last_success_timestamp_seconds",
            "Unix time of each source's last poll that ended ok (or not modified).",
            ["source"],
            registry=r,
        )
        self.poll_interval = Gauge(
            "newswire_source_poll_interval_seconds",
            "Each source's current (adaptive) poll interval.",
            ["source"],
            registry=r,
        )
        self.consecutive_failures = Gauge(
            "newswire_source_consecutive_failures",
            "Polls of a source that failed since its last success.",
            ["source"],
            registry=r,
        )
        self.retries_pending = Gauge(
            "newswire_ingest_retries_pending", "Polls and fetches waiting to be retried after a failure.", registry=r
        )
        self.archive_bytes = Gauge("newswire_archive_bytes", "Size on disk of the WARC page archive.", registry=r)
        self._failures: dict[str, int] = {}

    def polled(self, source: str, outcome: str, queued: int, *, next_due: float, interval_s: float, now: float) -> None:
        self.polls.labels(source=source, outcome=outcome).inc()
        self.entries_queued.labels(source=source).inc(queued)
        self.next_poll.labels(source=source).set(next_due)
        self.poll_interval.labels(source=source).set(interval_s)
        if outcome in ("ok", "not_modified"):
            self.last_success.labels(source=source).set(now)
            self._failures[source] = 0
        else:
            self._failures[source] = self._failures.get(source, 0) + 1
        self.consecutive_failures.labels(source=source).set(self._failures[source])

    def watch_archive(self, directory: Path) -> None:
        self.archive_bytes.set_function(lambda: _file_bytes(directory.glob("*.warc*")) if directory.is_dir() else 0)


class FetchMetrics:
    """What the fetch workers did with their tasks: outcomes, retries, bytes and politeness
    waits per source. Counted in the ingest service's process from its ``on_fetch`` events,
    which every worker (a thread, or a process that sends them home) produces, so one
    registry covers every worker."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry
        self.fetches = Counter(
            "newswire_page_fetches_total",
            "Page fetch tasks by source and final typed outcome (ok: an article published; else its dead letter).",
            ["source", "outcome"],
            registry=r,
        )
        self.retries = Counter(
            "newswire_fetch_retries_total",
            "Page fetches that failed transiently and were scheduled again, by source and outcome.",
            ["source", "outcome"],
            registry=r,
        )
        self.bytes = Counter(
            "newswire_fetched_bytes_total", "Bytes of pages received on the wire, by source.", ["source"], registry=r
        )
        self.politeness_wait = Counter(
            "newswire_politeness_wait_seconds_total",
            "Time page fetches waited for their turn at the host (politeness interval, robots.txt crawl-delay).",
            ["source"],
            registry=r,
        )
        self.last_article = Gauge(
            "newswire_source_last_article_timestamp_seconds",
            "Unix time a fetch worker last published an article of the source.",
            ["source"],
            registry=r,
        )

    def fetched(self, event: Any) -> None:
        """One ``connectors.ingest.FetchEvent``."""
        source = event.source
        if event.final:
            self.fetches.labels(source=source, outcome=event.outcome).inc()
        else:
            self.retries.labels(source=source, outcome=event.outcome).inc()
        self.bytes.labels(source=source).inc(event.wire_bytes)
        self.politeness_wait.labels(source=source).inc(event.politeness_wait_s)
        if event.final and event.outcome == "ok":
            self.last_article.labels(source=source).set_to_current_time()


class QualityMetrics:
    """Per-source quality, as the drift monitor last judged it."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.drifting = Gauge(
            "newswire_source_drifting",
            "1 while a source's field has dropped significantly below its own baseline, else 0.",
            ["source", "field"],
            registry=r,
        )
        self.drifting_since = Gauge(
            "newswire_source_drifting_since_timestamp_seconds",
            "Unix time a drifting field started to drift.",
            ["source", "field"],
            registry=r,
        )
        self.field_share = Gauge(
            "newswire_source_field_share",
            "Share of a source's recent pages with a field present (window) and over its baseline.",
            ["source", "field", "period"],
            registry=r,
        )
        self.median_body_chars = Gauge(
            "newswire_source_median_body_chars",
            "Median body length of a source's articles.",
            ["source", "period"],
            registry=r,
        )

    def publish(self, statuses: Iterable[Any]) -> None:
        """``statuses``: ``pipeline.quality.drift.SourceQuality`` values."""
        for status in statuses:
            for field in status.fields:
                drifting = field.drifting_since is not None
                self.drifting.labels(source=status.source, field=field.name).set(1 if drifting else 0)
                self.drifting_since.labels(source=status.source, field=field.name).set(
                    field.drifting_since.timestamp() if field.drifting_since else 0
                )
                self.field_share.labels(source=status.source, field=field.name, period="window").set(field.window_share)
                self.field_share.labels(source=status.source, field=field.name, period="baseline").set(
                    field.baseline_share
                )
            self.median_body_chars.labels(source=status.source, period="window").set(status.window_median_body)
            self.median_body_chars.labels(source=status.source, period="baseline").set(status.baseline_median_body)


def _file_bytes(paths: Iterable[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total
