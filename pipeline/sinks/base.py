"""The sink contract, and the one batching transform that drives every sink.

A sink writes batches of enriched articles idempotently: writing the same article twice
(a replay, or a batch retried after a crash) leaves one copy. A sink that can delete also
withdraws the articles dedup demoted (published, then found to copy an earlier article). ``WriteToSink`` buffers
elements and writes when a batch fills and at the end of every bundle, so when a bundle
(and therefore a micro-batch) succeeds, the sink holds all of it; that is what lets the
service commit Kafka offsets only after the sinks have written.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas import EnrichedArticle


class Sink(ABC):
    """One destination. Constructed with plain settings (it is pickled to the workers);
    ``open`` acquires connections and files on the worker."""

    name: str
    # Append-only sinks (JSON Lines, Parquet) cannot withdraw: readers of their files drop
    # the ids that the duplicates topic marks ``was_original``.
    withdraws: ClassVar[bool] = False

    def open(self) -> None:
        """Connect, create tables or files if missing."""

    @abstractmethod
    def write(self, batch: Sequence[EnrichedArticle]) -> None:
        """Durably write ``batch``; must be idempotent per article id."""

    def withdraw(self, article_ids: Sequence[str]) -> None:
        """Remove these demoted articles for good: idempotent, and a write of one of them that
        lands afterwards (the two run in parallel) must not bring it back."""
        raise NotImplementedError(f"the {self.name} sink cannot withdraw articles")

    def close(self) -> None:
        """Release what ``open`` acquired."""


class _WriteBatches(beam.DoFn):  # type: ignore[misc]
    def __init__(self, sink: Sink, batch_size: int, withdraw: bool) -> None:
        self._sink = sink
        self._batch_size = batch_size
        self._withdraw = withdraw
        self._batch: list[Any] = []
        self._written = Metrics.counter("sink", f"{sink.name}.{'withdrawn' if withdraw else 'written'}")
        self._errors = Metrics.counter("sink_errors", sink.name)
        self._write_ms = Metrics.counter("sink_latency", f"{sink.name}.ms")
        self._writes = Metrics.counter("sink_latency", f"{sink.name}.writes")

    def setup(self) -> None:
        self._sink.open()

    def teardown(self) -> None:
        self._sink.close()

    def start_bundle(self) -> None:
        self._batch = []

    def process(self, element: Any) -> None:
        self._batch.append(element)
        if len(self._batch) >= self._batch_size:
            self._flush()

    def finish_bundle(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._batch:
            started = time.monotonic()
            try:
                if self._withdraw:
                    self._sink.withdraw(self._batch)
                else:
                    self._sink.write(self._batch)
            except Exception:
                self._errors.inc()  # counted, then the bundle fails and is retried as before
                raise
            self._write_ms.inc(round((time.monotonic() - started) * 1000))
            self._writes.inc()
            self._written.inc(len(self._batch))
            self._batch = []


class WriteToSink(beam.PTransform):  # type: ignore[misc]
    """Writes EnrichedArticles to ``sink``; with ``withdraw``, withdraws article ids from it instead."""

    def __init__(self, sink: Sink, batch_size: int = 500, *, withdraw: bool = False) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        if withdraw and not sink.withdraws:
            raise ValueError(f"the {sink.name} sink cannot withdraw articles")
        self._sink = sink
        self._batch_size = batch_size
        self._withdraw = withdraw

    def expand(self, elements: beam.PCollection) -> Any:
        return elements | beam.ParDo(_WriteBatches(self._sink, self._batch_size, self._withdraw))
