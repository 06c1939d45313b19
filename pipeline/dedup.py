"""Deduplicate stage: keep the first copy of each article, report the others.

Two layers for now: the same article id (a re-announced or replayed article), and the
same normalised body under another id (an exact copy). Within a batch, copies meet
through GroupByKey so the work spreads over workers; across batches and restarts the
``DedupIndex`` decides. Originals continue; duplicates leave as ``DuplicateNotice``s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.dedup_index import Claim, SqliteDedupIndex
from schemas import DuplicateLayer, DuplicateNotice, EnrichedArticle
from schemas.timestamps import utc_now

ORIGINALS = "originals"
DUPLICATES = "duplicates"
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
_CLAIM_BATCH = 500


def revision_token(article: EnrichedArticle) -> str:
    """Identifies one publication of an article: equal only for the very same raw record."""
    material = f"{article.article_id}|{article.fetched_at.isoformat()}|{article.content_fingerprint}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def _precedence(article: EnrichedArticle) -> tuple[Any, ...]:
    """Earliest first: publication time (unknown last), then fetch time, then id."""
    return (article.published_at or _FAR_FUTURE, article.fetched_at, article.article_id, revision_token(article))


def notice(article: EnrichedArticle, *, duplicate_of: str, layer: DuplicateLayer) -> DuplicateNotice:
    return DuplicateNotice(
        article_id=article.article_id,
        duplicate_of=duplicate_of,
        layer=layer,
        similarity=1.0,
        canonical_url=article.canonical_url,
        source=article.source,
        detected_at=utc_now(),
    )


def _keep_first(
    grouped: tuple[str, Iterable[EnrichedArticle]], layer: DuplicateLayer
) -> Iterator[EnrichedArticle | beam.pvalue.TaggedOutput]:
    _, copies = grouped
    original, *others = sorted(copies, key=_precedence)
    yield original
    for other in others:
        yield beam.pvalue.TaggedOutput(DUPLICATES, notice(other, duplicate_of=original.article_id, layer=layer))


class _ClaimInIndex(beam.DoFn):  # type: ignore[misc]
    """Checks each batch survivor against what earlier batches kept."""

    def __init__(self, index_path: Path) -> None:
        self._index_path = index_path
        self._index: SqliteDedupIndex | None = None
        self._pending: list[tuple[EnrichedArticle, Any, Any]] = []
        self._duplicates = Metrics.counter("dedup", "duplicates")
        self._originals = Metrics.counter("dedup", "originals")

    def setup(self) -> None:
        self._index = SqliteDedupIndex(self._index_path)

    def teardown(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def start_bundle(self) -> None:
        self._pending = []

    def process(
        self,
        article: EnrichedArticle,
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        # Claims are made a batch at a time (one index transaction per batch), so each
        # element keeps its window and timestamp to be emitted correctly later.
        self._pending.append((article, window, timestamp))
        if len(self._pending) >= _CLAIM_BATCH:
            yield from self._decide()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._decide()

    def _decide(self) -> Iterator[Any]:
        assert self._index is not None, "setup() opens the index"
        pending, self._pending = self._pending, []
        if not pending:
            return
        articles = [article for article, _, _ in pending]
        claims = []
        for article in articles:
            token = revision_token(article)
            claims.append(Claim(DuplicateLayer.ARTICLE_ID, article.article_id, article.article_id, token))
            claims.append(Claim(DuplicateLayer.EXACT_CONTENT, article.content_fingerprint, article.article_id, token))
        owners = self._index.claim_all(claims)
        for position, (article, window, timestamp) in enumerate(pending):
            by_id, by_content = owners[2 * position], owners[2 * position + 1]
            if by_id.revision != claims[2 * position].revision:
                decision: Any = beam.pvalue.TaggedOutput(
                    DUPLICATES,
                    WindowedValue(
                        notice(article, duplicate_of=by_id.article_id, layer=DuplicateLayer.ARTICLE_ID),
                        timestamp,
                        (window,),
                    ),
                )
                self._duplicates.inc()
            elif by_content.article_id != article.article_id:
                decision = beam.pvalue.TaggedOutput(
                    DUPLICATES,
                    WindowedValue(
                        notice(article, duplicate_of=by_content.article_id, layer=DuplicateLayer.EXACT_CONTENT),
                        timestamp,
                        (window,),
                    ),
                )
                self._duplicates.inc()
            else:
                decision = WindowedValue(article, timestamp, (window,))
                self._originals.inc()
            yield decision


class Deduplicate(beam.PTransform):  # type: ignore[misc]
    """EnrichedArticle -> originals (main output) and DuplicateNotice (``duplicates`` output)."""

    def __init__(self, index_path: Path) -> None:
        super().__init__()
        self._index_path = index_path

    def expand(self, articles: beam.PCollection) -> dict[str, beam.PCollection]:
        by_id = (
            articles
            | "KeyById" >> beam.WithKeys(lambda a: a.article_id)
            | "GroupById" >> beam.GroupByKey()
            | "FirstPerId" >> beam.FlatMap(_keep_first, DuplicateLayer.ARTICLE_ID).with_outputs(DUPLICATES, main="kept")
        )
        by_content = (
            by_id.kept
            | "KeyByContent" >> beam.WithKeys(lambda a: a.content_fingerprint)
            | "GroupByContent" >> beam.GroupByKey()
            | "FirstPerContent"
            >> beam.FlatMap(_keep_first, DuplicateLayer.EXACT_CONTENT).with_outputs(DUPLICATES, main="kept")
        )
        decided = by_content.kept | "ClaimInIndex" >> beam.ParDo(_ClaimInIndex(self._index_path)).with_outputs(
            DUPLICATES, main="originals"
        )
        duplicates = (by_id[DUPLICATES], by_content[DUPLICATES], decided[DUPLICATES]) | "AllDuplicates" >> (
            beam.Flatten()
        )
        return {ORIGINALS: decided.originals, DUPLICATES: duplicates}
