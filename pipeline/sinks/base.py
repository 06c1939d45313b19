"""The sink contract, and the one batching transform that drives every sink.

A sink writes batches of enriched articles idempotently: writing the same article twice
(a replay, or a batch retried after a crash) leaves one copy. A sink that can delete also
withdraws the articles dedup demoted (published, then found to copy an earlier article). ``WriteToSink`` buffers
elements and writes when a batch fills and at the end of every bundle, so when a bundle
(and therefore a micro-batch) succeeds, the sink holds all of it; that is what lets the
service commit Kafka offsets only after the sinks have written.

A write that fails is one of two things, and a sink says which (``Sink.unavailable``):
the sink is down (``SinkUnavailable``: the bundle fails, offsets stay uncommitted, the
service waits it out; never a dead letter), or an element was refused. A refused batch is
written again element by element to find the refused one(s), which leave on the
``failures`` output as ``StageFailure``s (stage ``sink:<name>``) while the rest land.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.dead_letters import FAILURES, StageFailure
from pipeline.dependencies import SinkUnavailable, environment_error
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

    @property
    def check(self) -> str:
        """The health check this sink's outages are reported under."""
        return f"sink:{self.name}"

    def probe(self) -> None:
        """Raise ``SinkUnavailable`` if the sink cannot take writes now; cheap, and safe to
        call from the service between batches (it must not keep what it opens)."""

    def unavailable(self, error: BaseException) -> SinkUnavailable | None:
        """``error`` as a ``SinkUnavailable`` when the sink, not the data, is at fault; ``None``
        when an element may have been refused. Sinks extend this for their driver's errors."""
        if isinstance(error, SinkUnavailable):
            return error
        if environment_error(error):
            return SinkUnavailable(self.check, f"{type(error).__name__}: {error}")
        return None


class _WriteBatches(beam.DoFn):  # type: ignore[misc]
    def __init__(self, sink: Sink, batch_size: int, withdraw: bool) -> None:
        self._sink = sink
        self._batch_size = batch_size
        self._withdraw = withdraw
        self._batch: list[Any] = []
        self._written = Metrics.counter("sink", f"{sink.name}.{'withdrawn' if withdraw else 'written'}")
        self._refused = Metrics.counter("sink", f"{sink.name}.refused")
        self._errors = Metrics.counter("sink_errors", sink.name)
        self._write_ms = Metrics.counter("sink_latency", f"{sink.name}.ms")
        self._writes = Metrics.counter("sink_latency", f"{sink.name}.writes")

    def setup(self) -> None:
        self._guarded(self._sink.open)

    def teardown(self) -> None:
        self._sink.close()

    def start_bundle(self) -> None:
        self._batch = []

    def process(
        self, element: Any, window: Any = beam.DoFn.WindowParam, timestamp: Any = beam.DoFn.TimestampParam
    ) -> Iterator[Any]:
        self._batch.append(WindowedValue(element, timestamp, (window,)))
        if len(self._batch) >= self._batch_size:
            yield from self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush()

    def _flush(self) -> Iterator[Any]:
        batch, self._batch = self._batch, []
        if not batch:
            return
        try:
            self._guarded(lambda: self._write([held.value for held in batch]))
            self._written.inc(len(batch))
            return
        except SinkUnavailable:
            raise
        except Exception:  # noqa: S110 - an element was refused: find which, one at a time
            pass
        for held in batch:
            try:
                self._guarded(lambda held=held: self._write([held.value]))  # type: ignore[misc]
                self._written.inc()
            except SinkUnavailable:
                raise
            except Exception as error:
                failure = self._failure(held.value, error)
                if failure is None:
                    raise
                yield beam.pvalue.TaggedOutput(FAILURES, held.with_value(failure))

    def _write(self, elements: list[Any]) -> None:
        started = time.monotonic()
        if self._withdraw:
            self._sink.withdraw(elements)
        else:
            self._sink.write(elements)
        self._write_ms.inc(round((time.monotonic() - started) * 1000))
        self._writes.inc()

    def _guarded(self, call: Callable[[], None]) -> None:
        """Runs ``call``; an outage leaves as ``SinkUnavailable``, whatever the driver raised."""
        try:
            call()
        except Exception as error:
            self._errors.inc()
            unavailable = self._sink.unavailable(error)
            if unavailable is None:
                raise
            if unavailable is error:
                raise
            raise unavailable from error

    def _failure(self, element: Any, error: Exception) -> StageFailure | None:
        if not isinstance(element, EnrichedArticle):
            return None  # a withdrawal names an id only: nothing to dead-letter, so the batch fails
        self._refused.inc()
        return StageFailure.of(element, stage=self._sink.check, error_type="write_refused", error=error)


class WriteToSink(beam.PTransform):  # type: ignore[misc]
    """Writes EnrichedArticles to ``sink``; with ``withdraw``, withdraws article ids from it instead.

    Outputs: the main output (empty; its watermark says what is written) and ``failures``,
    a ``StageFailure`` for each article the sink refused."""

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
        return elements | beam.ParDo(_WriteBatches(self._sink, self._batch_size, self._withdraw)).with_outputs(
            FAILURES, main="written"
        )
