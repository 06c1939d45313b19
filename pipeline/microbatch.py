"""The local continuous service: bounded Beam pipelines over successive Kafka offset ranges.

No local Beam runner runs a Python unbounded source well, so the service repeats: read the
raw topic's committed and end offsets, run the pipeline over [committed, end) (capped per
partition), and commit the ends only after the pipeline, and so every sink, has finished.
A crash between the two re-runs the batch; the sinks and the dedup index are idempotent,
so nothing is lost and nothing is written twice. The same graph runs unbounded on a
streaming runner; only this loop is local. A large batch is cut over ``processes`` worker
processes (``pipeline.batch_processes``), one pipeline each; its offsets are committed
once all of them have finished, so a batch is still all or nothing.

The output topics are not idempotent, so every attempt is marked: before running a range
the service commits its *start* offset with metadata saying when an attempt at it started
(``_ATTEMPT_MARK``; an earlier mark at that offset is kept). An attempt that finds a mark
(an in-process retry, a piece of a batch being split, a new process after a crash) is a
re-run: its pipeline gets ``PipelineConfig.rerun_since_ms`` and the enriched and duplicates
writes skip what an earlier attempt published since then. The final commit of the stop
offset clears the mark, so a batch that is not a re-run never reads anything back.

A batch that fails is never run forever and never stops the service:

- While a dependency is down (the broker, a sink, its disk: ``probe`` finds out, or the
  failure names it through ``pipeline.dependencies``) the service pauses: one log line and
  one ``health`` report when it goes down, one when it is back, probes with backoff in
  between, then runs the same batch again. No splitting and no dead letters meanwhile:
  an outage is never a record's fault.
- While every dependency answers, a failing batch is retried with exponential backoff and
  jitter (``RetryPolicy``); past its attempts the range is bisected until the records that
  fail alone are found. Each becomes a dead letter (stage ``batch``, type ``poison``, with
  its coordinates) and its offset is committed; the rest of the range is written.

This module must never commit an offset before the records below it are written or
dead-lettered, never mark an attempt anywhere but at the offset its batch was planned
from, and never dead-letter a record while any dependency is down.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import resource
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.batch_processes import cut_batch, describe_ranges, merge_counters, run_pieces
from pipeline.dedup import IndexLocation, kernels
from pipeline.dependencies import DependencyUnavailable, probe_directory, unavailable_in
from pipeline.enrich import load_tables
from pipeline.graph import PipelineConfig, build_pipeline, dead_letter_message
from pipeline.heap import release_freed_heap
from pipeline.kafka_io import PartitionRange, ReadFromKafka, committed_offsets
from schemas import DeadLetter
from schemas.client_config import ClientConfig
from schemas.kafka_clients import range_reader

log = logging.getLogger(__name__)

Health = Callable[[str, bool, str], None]
# What runs over each range: the source, then the stages (``pipeline.graph.build_pipeline``).
Graph = Callable[[beam.Pipeline, beam.PTransform, PipelineConfig], None]
BROKER = "broker"
INDEX = "index"
# Reported not-ready while batches fail record by record for a reason no record explains.
PIPELINE = "pipeline"
_PROBE_TIMEOUT_S = 2.0
_POISON_READ_TIMEOUT_S = 10.0
_MAX_ERROR_CHARS = 2_000
# Commit metadata on a batch's start offset while an attempt at it may have published.
_ATTEMPT_MARK = "newswire:attempt-started-ms="


@dataclass(frozen=True)
class BatchReport:
    ranges: tuple[PartitionRange, ...]
    duration_s: float
    counters: Mapping[str, int] = field(default_factory=dict)
    # How many worker processes the batch was cut over (1: it ran whole in the service's process).
    pieces: int = 1
    # CPU seconds (user + system) of the service's process and the batch's worker processes while
    # the batch ran: against duration_s, how many cores it kept busy.
    cpu_s: float = 0.0

    @property
    def records(self) -> int:
        return sum(r.size for r in self.ranges)


class BatchFailed(RuntimeError):
    """The pipeline did not finish; offsets were not committed and the batch will re-run."""


class TopicMissing(RuntimeError):
    """The raw topic does not exist: a deployment to fix, not an outage to wait out."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing batch is retried while its dependencies answer, and how often a
    dependency that is down is probed: exponential backoff from ``initial_backoff_s`` up
    to ``max_backoff_s``, each delay jittered down by up to half so that workers spread."""

    attempts: int = 3
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if not 0 < self.initial_backoff_s <= self.max_backoff_s:
            raise ValueError(
                f"need 0 < initial_backoff_s ({self.initial_backoff_s}) <= max_backoff_s ({self.max_backoff_s})"
            )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The pause before try ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** max(0, attempt - 1))
        return ceiling * (0.5 + rng.random() / 2)


@dataclass
class _Outage:
    since_wall: datetime
    since: float
    detail: str


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
        retry: RetryPolicy | None = None,
        health: Health | None = None,
        processes: int = 1,
        parallel_min_records: int = 1,
        max_piece_records: int | None = None,
        graph: Graph = build_pipeline,
    ) -> None:
        if max_batch_records < 1:
            raise ValueError("max_batch_records must be positive")
        if processes < 1:
            raise ValueError(f"processes must be at least 1, not {processes}")
        if max_piece_records is not None and max_piece_records < 1:
            raise ValueError(f"max_piece_records must be positive, not {max_piece_records}")
        self._consumer_config = ClientConfig(consumer_config)
        self._raw_topic = raw_topic
        self._config = config
        self._beam_args = list(beam_args)
        # Batches of at least parallel_min_records records are cut over this many worker processes.
        self._processes = processes
        self._parallel_min_records = parallel_min_records
        self._max_piece_records = max_piece_records
        self._warmed = False
        self._max_batch_records = max_batch_records
        self._interval_s = interval_s
        self._on_batch = on_batch
        self._retry = retry or RetryPolicy()
        self._health = health
        self._graph = graph
        self._rng = random.Random()  # jitter only, never secrets
        self._known: dict[str, bool] = {}
        self._outages: dict[str, _Outage] = {}
        # While a batch is split: each partition's stop. Pieces committed below it keep the mark.
        self._splitting: dict[TopicPartition, int] = {}
        self._offsets = KafkaConsumer(**self._consumer_config, group_id=consumer_group, enable_auto_commit=False)

    def close(self) -> None:
        self._offsets.close()

    def _partitions(self) -> list[TopicPartition]:
        partitions = self._offsets.partitions_for_topic(self._raw_topic)
        if not partitions:
            raise TopicMissing(f"topic {self._raw_topic!r} does not exist; run `newswire topics create` first")
        return [TopicPartition(self._raw_topic, p) for p in sorted(partitions)]

    def end_offsets(self) -> dict[TopicPartition, int]:
        return dict(self._offsets.end_offsets(self._partitions()))

    def committed_offsets(self) -> dict[TopicPartition, int]:
        return committed_offsets(self._offsets, self._partitions())

    def plan_batch(self, targets: Mapping[TopicPartition, int] | None = None) -> list[PartitionRange]:
        """Ranges from the committed offsets to ``targets`` (default: the end), capped."""
        ends = targets if targets is not None else self.end_offsets()
        ranges = []
        for partition, start in self.committed_offsets().items():
            stop = min(ends.get(partition, start), start + self._max_batch_records)
            if stop > start:
                ranges.append(PartitionRange(partition.topic, partition.partition, start, stop))
        return ranges

    def run_batch(self, ranges: list[PartitionRange], *, commit: bool = True) -> BatchReport:
        """One pipeline over ``ranges``, then the commit; raises if either fails (nothing is committed).
        Without ``commit`` the ranges are only tried: their offsets stay where they were."""
        started, cpu_started = time.monotonic(), _cpu_seconds()
        since = self._mark_attempt(ranges, mark=commit)
        config = self._config if since is None else replace(self._config, rerun_since_ms=since)
        pieces = cut_batch(
            ranges,
            processes=self._processes,
            min_records=self._parallel_min_records,
            max_piece_records=self._max_piece_records,
        )
        self._warm_up()
        if len(pieces) > 1:
            run = functools.partial(self._run_pipeline, config=config)
            counters = merge_counters(run_pieces(pieces, run, processes=self._processes, describe=describe_ranges))
        else:
            counters = self._run_pipeline(ranges, config=config)
        report = BatchReport(
            tuple(ranges),
            time.monotonic() - started,
            counters,
            pieces=len(pieces),
            cpu_s=_cpu_seconds() - cpu_started,
        )
        if commit:
            # Only now, with every sink flushed, may the batch count as consumed.
            self._commit(ranges)
            self._committed(report)
        return report

    def _run_pipeline(self, ranges: list[PartitionRange], *, config: PipelineConfig) -> dict[str, int]:
        """The graph over ``ranges`` in this process; the pipeline's counters."""
        pipeline = beam.Pipeline(options=PipelineOptions(self._beam_args))
        self._graph(pipeline, ReadFromKafka(self._consumer_config, ranges), config)
        result = pipeline.run()
        state = result.wait_until_finish()
        if state != PipelineState.DONE:
            raise BatchFailed(f"pipeline ended in state {state} for ranges {ranges}")
        return _counters(result)

    def _warm_up(self) -> None:
        """Load the Enrich stage's shared tables and the dedup signatures' compiled loops here once,
        so that every forked worker inherits them (copy-on-write) instead of loading its own for
        every batch, then hand back the heap the loads freed before any worker is forked."""
        if not self._warmed:
            load_tables(self._config.enrichers)
            kernels.load()
            release_freed_heap()
            self._warmed = True

    def _mark_attempt(self, ranges: list[PartitionRange], *, mark: bool) -> int | None:
        """Since when (epoch ms) an earlier attempt at ``ranges`` may have published their
        outputs, None if none did; with ``mark``, commits each start offset marked with this
        attempt's start (or the earlier mark found there)."""
        now_ms = int(time.time() * 1000)
        earliest: int | None = None
        marks: dict[TopicPartition, OffsetAndMetadata] = {}
        for r in ranges:
            partition = TopicPartition(r.topic, r.partition)
            found = _attempt_started_ms(self._offsets.committed(partition, metadata=True), r.start)
            if found is not None:
                earliest = found if earliest is None else min(earliest, found)
            marks[partition] = OffsetAndMetadata(r.start, f"{_ATTEMPT_MARK}{found or now_ms}", -1)
        if mark:
            self._offsets.commit(marks)
        if earliest is not None:
            log.info("re-running a batch an earlier attempt may have published", extra={"ranges": _describe(ranges)})
        return earliest

    def run(self, *, until_caught_up: bool, stop: threading.Event) -> list[BatchReport]:
        """Run batches until ``stop`` is set (or, with ``until_caught_up``, until the
        offsets seen at start are consumed). A batch in flight always finishes first."""
        targets: dict[TopicPartition, int] | None = None
        reports: list[BatchReport] = []
        while not stop.is_set():
            try:
                if until_caught_up and targets is None:
                    targets = self.end_offsets()
                ranges = self.plan_batch(targets)
            except TopicMissing:
                raise
            except Exception as error:  # the broker, most likely: wait it out, then plan again
                if not self._wait_out(error, stop):
                    log.warning("could not plan a batch; trying again", extra={"error": _first_line(error)})
                    stop.wait(self._retry.max_backoff_s)
                continue
            if not ranges:
                if until_caught_up:
                    break
                stop.wait(self._interval_s)
                continue
            reports.extend(self._settle(ranges, stop))
        return reports

    def _settle(self, ranges: list[PartitionRange], stop: threading.Event) -> list[BatchReport]:
        """Run ``ranges`` until they are committed: waiting out outages, retrying, then isolating."""
        failures = 0
        while not stop.is_set():
            try:
                return [self.run_batch(ranges)]
            except Exception as error:
                if self._wait_out(error, stop):
                    continue
                failures += 1
                if failures >= self._retry.attempts:
                    return self._isolate(ranges, error, stop)
                delay = self._retry.delay(failures, self._rng)
                log.warning(
                    "batch failed; retrying it",
                    extra={
                        "ranges": _describe(ranges),
                        "attempt": failures,
                        "of": self._retry.attempts,
                        "retry_in_s": round(delay, 2),
                        "error": _first_line(error),
                    },
                    exc_info=failures == 1,
                )
                stop.wait(delay)
        return []

    def _isolate(self, ranges: list[PartitionRange], error: Exception, stop: threading.Event) -> list[BatchReport]:
        """Bisect ``ranges`` in offset order: what succeeds is committed, a single record that
        still fails after the retries is dead-lettered as poison and committed past."""
        log.warning(
            "batch keeps failing while every dependency answers; splitting it to find the records at fault",
            extra={"ranges": _describe(ranges), "error": _first_line(error)},
        )
        # The failed attempts may have published from any piece: each keeps the batch's mark.
        self._splitting = {TopicPartition(r.topic, r.partition): r.stop or r.start for r in ranges}
        try:
            return self._split(ranges, error, stop)
        finally:
            self._splitting = {}

    def _split(self, ranges: list[PartitionRange], error: Exception, stop: threading.Event) -> list[BatchReport]:
        reports: list[BatchReport] = []
        succeeded = False
        # Each partition alone first; one partition's range is known to fail, so its halves.
        pending = deque(ranges if len(ranges) > 1 else _halves(ranges[0]))
        while pending and not stop.is_set():
            piece = pending.popleft()
            single = piece.size == 1
            try:
                reports.append(self._run_single(piece, stop) if single else self.run_batch([piece]))
                succeeded = True
                continue
            except Exception as failure:
                if self._wait_out(failure, stop):
                    pending.appendleft(piece)
                    continue
                error = failure
            if single and not succeeded and self._fails_alike(piece, ranges, error):
                # Not one record of the batch gets through, and its neighbour fails alone just
                # the same: the pipeline is broken (a deployment, a bug), not the records.
                self._report(PIPELINE, False, f"every record fails the same way: {_first_line(error)}")
                stop.wait(self._retry.max_backoff_s)
                return reports
            if single:
                try:
                    reports.append(self._dead_letter_poison(piece, error))
                except Exception as failure:  # the dead letter could not be written: never skip the record
                    if not self._wait_out(failure, stop):
                        log.error("could not dead-letter a poison record; trying again", exc_info=True)
                        stop.wait(self._retry.max_backoff_s)
                    pending.appendleft(piece)
            else:
                pending.extendleft(reversed(_halves(piece)))
        return reports

    def _fails_alike(self, piece: PartitionRange, ranges: list[PartitionRange], error: Exception) -> bool:
        """Whether the record after ``piece`` in ``ranges`` fails alone with the same error (tried, never committed)."""
        within = next((r for r in ranges if (r.topic, r.partition) == (piece.topic, piece.partition)), None)
        if within is None or within.stop is None or piece.start + 1 >= within.stop:
            return False
        neighbour = PartitionRange(piece.topic, piece.partition, piece.start + 1, piece.start + 2)
        try:
            self.run_batch([neighbour], commit=False)
        except Exception as failure:
            return _first_line(failure).split(" [while running")[0] == _first_line(error).split(" [while running")[0]
        return False

    def _run_single(self, piece: PartitionRange, stop: threading.Event) -> BatchReport:
        """One record's range, retried like a batch: only a record that fails every time is poison."""
        for attempt in range(1, self._retry.attempts + 1):
            try:
                return self.run_batch([piece])
            except Exception as error:
                if attempt == self._retry.attempts or unavailable_in(error) or self._probe():
                    raise
                stop.wait(self._retry.delay(attempt, self._rng))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _dead_letter_poison(self, piece: PartitionRange, error: Exception) -> BatchReport:
        started = time.monotonic()
        key, value = self._read_record(piece)
        dead_letter = DeadLetter.of(
            stage="batch",
            error_type="poison",
            error=(
                f"this record fails the pipeline on its own, {self._retry.attempts} time(s), while every dependency "
                f"answers; the rest of its batch was written. Last error: {_first_line(error)}"
            )[:_MAX_ERROR_CHARS],
            original=value,
            max_original_bytes=self._config.dead_letter_original_bytes,
            topic=piece.topic,
            partition=piece.partition,
            offset=piece.start,
            key=key.decode("utf-8", "replace") if key is not None else None,
        )
        message = dead_letter_message(dead_letter)
        producer = KafkaProducer(**self._config.producer_config, acks="all", enable_idempotence=True)
        try:
            producer.send(
                self._config.topics.dead_letter, key=message.key, value=message.value, headers=list(message.headers)
            ).get(timeout=_POISON_READ_TIMEOUT_S)
        finally:
            producer.close()
        self._commit([piece])
        log.error(
            "record dead-lettered as poison; moving on",
            extra={
                "position": f"{piece.topic}/{piece.partition}/{piece.start}",
                "dead_letter_id": dead_letter.dead_letter_id,
            },
        )
        report = BatchReport((piece,), time.monotonic() - started, {"dead_letter.batch.poison": 1})
        self._committed(report)
        return report

    def _read_record(self, piece: PartitionRange) -> tuple[bytes | None, bytes | None]:
        """Key and value of the record at ``piece.start``; (None, None) when no record is there."""
        reader = range_reader(self._consumer_config)
        try:
            partition = TopicPartition(piece.topic, piece.partition)
            reader.assign([partition])
            reader.seek(partition, piece.start)
            deadline = time.monotonic() + _POISON_READ_TIMEOUT_S
            while time.monotonic() < deadline:
                for message in reader.poll(timeout_ms=500, max_records=1).get(partition, []):
                    if message.offset == piece.start:
                        return message.key, message.value
                    return None, None  # compacted away, or a transaction marker
            raise DependencyUnavailable(BROKER, f"could not read {piece.topic}/{piece.partition}/{piece.start}")
        finally:
            reader.close()

    def _commit(self, ranges: list[PartitionRange]) -> None:
        offsets = {}
        for r in ranges:
            partition = TopicPartition(r.topic, r.partition)
            metadata = ""
            if r.stop is not None and r.stop < self._splitting.get(partition, 0):
                # The rest of the batch being split may hold what its failed attempts published.
                found = self._offsets.committed(partition, metadata=True)
                started = _attempt_started_ms(found, r.start)
                metadata = f"{_ATTEMPT_MARK}{started}" if started is not None else ""
            offsets[partition] = OffsetAndMetadata(r.stop, metadata, -1)
        self._offsets.commit(offsets)

    def _committed(self, report: BatchReport) -> None:
        # A committed batch proves every dependency it touched answers.
        for check in [BROKER, *(sink.check for sink in self._config.sinks), *self._outages]:
            self._report(check, True, "")
        log.info(
            "batch committed",
            extra={
                "records": report.records,
                "pieces": report.pieces,
                "duration_s": round(report.duration_s, 3),
                "cpu_s": round(report.cpu_s, 3),
                "counters": report.counters,
            },
        )
        if self._on_batch:
            self._on_batch(report)

    # Outages ---------------------------------------------------------------------------

    def _probe(self) -> dict[str, str]:
        """The dependencies that do not answer now, with why."""
        down: dict[str, str] = {}
        broker = _broker_unreachable(self._consumer_config.get("bootstrap_servers", ""))
        if broker:
            down[BROKER] = broker
        index = _index_unavailable(self._config.dedup.index)
        if index:
            down[INDEX] = index
        for sink in self._config.sinks:
            try:
                sink.probe()
            except DependencyUnavailable as error:
                down[error.check] = error.detail
            except Exception as error:  # a probe that breaks says the sink is not fine either
                down[sink.check] = f"{type(error).__name__}: {error}"
        return down

    def _wait_out(self, error: Exception, stop: threading.Event) -> bool:
        """If a dependency is down (probed, or named by ``error``), pause until it answers
        and return True; return False when every dependency answers."""
        down = self._probe()
        named = unavailable_in(error)
        if named and named not in down:
            # The write failed on it although its probe passes (a disk full only for large
            # writes, a lock held): down until a batch gets through it.
            down[named] = _first_line(error)
        if not down:
            return False
        for check, detail in down.items():
            self._report(check, False, detail)
        attempt = 0
        while not stop.is_set():
            attempt += 1
            stop.wait(self._retry.delay(attempt, self._rng))
            still = self._probe()
            for check in list(self._outages):
                if check not in still and check != named:
                    self._report(check, True, "")
            if not still:
                return True
        return True

    def _report(self, check: str, ok: bool, detail: str) -> None:
        """Tell ``health`` and the log of a change of ``check``'s state, once per change."""
        if self._known.get(check) == ok:
            return
        first = check not in self._known
        self._known[check] = ok
        if not ok:
            self._outages[check] = _Outage(datetime.now(UTC), time.monotonic(), detail)
            log.warning(
                f"{check} is down; pausing the pipeline until it answers (no dead letters meanwhile)",
                extra={"check": check, "detail": detail},
            )
        elif not first:
            outage = self._outages.pop(check, None)
            if outage is not None:
                log.warning(
                    f"{check} is back after {time.monotonic() - outage.since:.1f} s; resuming",
                    extra={"check": check, "down_since": outage.since_wall.isoformat(timespec="seconds")},
                )
        if self._health is not None:
            try:
                self._health(check, ok, detail)
            except Exception:  # an observer's failure must never stop the pipeline
                log.exception("the health callback failed", extra={"check": check})


def _attempt_started_ms(committed: OffsetAndMetadata | None, start: int) -> int | None:
    """The attempt start marked on ``committed`` if it covers offset ``start``."""
    if committed is None or committed.offset > start or not (committed.metadata or "").startswith(_ATTEMPT_MARK):
        return None
    try:
        return int(committed.metadata[len(_ATTEMPT_MARK) :])
    except ValueError:
        return None


def _broker_unreachable(bootstrap: str | list[str]) -> str | None:
    """None when any bootstrap server accepts a connection; else why none does."""
    servers = bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)
    reasons = []
    for server in (s.strip() for s in servers if s.strip()):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=_PROBE_TIMEOUT_S):
                return None
        except (OSError, ValueError) as error:
            reasons.append(f"{server}: {error}")
    return "; ".join(reasons) or "no bootstrap servers configured"


def _halves(piece: PartitionRange) -> list[PartitionRange]:
    """``piece`` split in two in offset order; itself when it holds one offset."""
    if piece.size < 2:
        return [piece]
    middle = piece.start + piece.size // 2
    return [
        PartitionRange(piece.topic, piece.partition, piece.start, middle),
        PartitionRange(piece.topic, piece.partition, middle, piece.stop),
    ]


def _index_unavailable(index: IndexLocation) -> str | None:
    """None when the dedup index can be reached; else why not."""
    if index.sqlite_path is not None:
        try:
            probe_directory(index.sqlite_path.parent, check=INDEX)
        except DependencyUnavailable as error:
            return error.detail
        return None
    import redis  # only a Redis index needs the client

    try:
        with redis.Redis.from_url(index.redis_url or "", socket_connect_timeout=_PROBE_TIMEOUT_S) as client:
            client.ping()
    except redis.RedisError as error:
        return f"Redis does not answer: {error}"
    return None


def _describe(ranges: list[PartitionRange]) -> list[str]:
    return [r.label for r in ranges]


def _first_line(error: BaseException) -> str:
    """The line of ``error`` that says what went wrong: its first, or, when a runner passed on a
    worker's whole traceback, the last exception line of it."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    lines = text.splitlines()
    if lines[0].startswith("Traceback"):
        said = [line for line in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Unavailable|Exit)\b", line)]
        if said:
            return said[-1][:_MAX_ERROR_CHARS]
    return lines[0][:_MAX_ERROR_CHARS]


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


def _cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its children that have ended and been
    waited for: the batch worker processes, each joined before its batch returns."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime
