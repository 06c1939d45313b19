"""Dead letters of the stages after decode, and where in Kafka their records came from.

Enrich, dedup, each sink and each Kafka write meet articles, not Kafka records, so an
element one of them refuses leaves as a ``StageFailure``: the stage, the error, and the
article as it came off the raw topic (the cleaned fields only, so that replaying it
through the raw topic works). Decode emits each record's ``RecordPosition`` beside its
article; ``LocateFailures`` looks the failures' positions up (a side input read only when
a failure arrives) and builds each ``DeadLetter`` with its coordinates through
``DeadLetter.of``, so the same failure of the same record always gets the same
``dead_letter_id``.

This module never builds a dead letter for a dependency that is down (see
``pipeline.dependencies``), and never fails the pipeline on a failure it cannot locate:
that one is dead-lettered without coordinates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from schemas import CleanedArticle, DeadLetter, EnrichedArticle, encode

FAILURES = "failures"
POSITIONS = "positions"
# Error text kept on a dead letter: enough for any message a person can read.
_MAX_ERROR_CHARS = 2_000


@dataclass(frozen=True)
class RecordPosition:
    """Where one article's raw record is: its coordinates, and its fetch time to tell apart
    several records of one article id in a batch."""

    topic: str
    partition: int
    offset: int
    fetched_at: str


@dataclass(frozen=True)
class StageFailure:
    """One element a stage refused, before its coordinates are known."""

    stage: str
    error_type: str
    error: str
    article_id: str
    fetched_at: str
    original: bytes
    source_name: str | None = None
    source_url: str | None = None

    @classmethod
    def of(
        cls,
        article: CleanedArticle | EnrichedArticle,
        *,
        stage: str,
        error_type: str,
        error: BaseException | str,
    ) -> StageFailure:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return cls(
            stage=stage,
            error_type=error_type,
            error=text[:_MAX_ERROR_CHARS],
            article_id=article.article_id,
            fetched_at=article.fetched_at.isoformat(),
            original=encode(_as_cleaned(article)),
            source_name=article.source.name,
            source_url=article.canonical_url or article.source.url,
        )


def _as_cleaned(article: CleanedArticle | EnrichedArticle) -> CleanedArticle:
    """The article as the raw topic carries it: what a replay sends back through the pipeline."""
    if type(article) is CleanedArticle:
        return article
    return CleanedArticle.model_validate({name: getattr(article, name) for name in CleanedArticle.model_fields})


def position_of(topic: str, partition: int, offset: int, article: CleanedArticle) -> tuple[str, RecordPosition]:
    return article.article_id, RecordPosition(topic, partition, offset, article.fetched_at.isoformat())


def locate(failure: StageFailure, positions: Iterable[RecordPosition], max_original_bytes: int) -> DeadLetter:
    """``failure`` as a dead letter, at the position of the record it came from when known."""
    candidates = list(positions)
    same_fetch = [p for p in candidates if p.fetched_at == failure.fetched_at]
    # Several records of one article in a batch: the one fetched when the failed copy was;
    # failing that, the last (a re-announcement of the same body).
    position = max(same_fetch or candidates, key=lambda p: p.offset, default=None)
    return DeadLetter.of(
        stage=failure.stage,
        error_type=failure.error_type,
        error=failure.error,
        original=failure.original,
        max_original_bytes=max_original_bytes,
        topic=position.topic if position else None,
        partition=position.partition if position else None,
        offset=position.offset if position else None,
        key=failure.article_id,
        source_name=failure.source_name,
        source_url=failure.source_url,
    )


class _Locate(beam.DoFn):  # type: ignore[misc]
    def __init__(self, max_original_bytes: int) -> None:
        self._max_original_bytes = max_original_bytes

    def process(self, failure: StageFailure, positions: Any) -> Iterator[DeadLetter]:
        yield locate(failure, positions[failure.article_id], self._max_original_bytes)


class LocateFailures(beam.PTransform):  # type: ignore[misc]
    """StageFailure -> DeadLetter, with coordinates from the ``positions`` decode emitted."""

    def __init__(self, positions: beam.PCollection, *, max_original_bytes: int) -> None:
        super().__init__()
        if max_original_bytes < 0:
            raise ValueError(f"max_original_bytes must not be negative, not {max_original_bytes}")
        self._positions = positions
        self._max_original_bytes = max_original_bytes

    def expand(self, failures: beam.PCollection) -> beam.PCollection:
        return failures | beam.ParDo(
            _Locate(self._max_original_bytes), positions=beam.pvalue.AsMultiMap(self._positions)
        )
