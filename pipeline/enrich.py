"""Enrich stage: runs the configured enrichers over each article.

A failing enricher never stops the pipeline: its failure is recorded on the article's
``enrichment_failures`` and the article goes on without that enricher's fields. With
``with_failures()`` the transform also says so on a ``failures`` output (a
``StageFailure`` of stage ``enrich``, type ``enricher_error``), so an operator sees which
articles lack what and can replay them once the enricher is fixed. An article that
cannot be enriched at all (``internal_error``) leaves only there.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from pydantic import ValidationError

from pipeline.dead_letters import FAILURES, StageFailure
from pipeline.enrichers import word_runs
from pipeline.enrichers.base import Enricher
from schemas import CleanedArticle, EnrichedArticle, EnrichmentFailure
from schemas.timestamps import utc_now


def content_fingerprint(body: str) -> str:
    """Equal for bodies that differ only in case, punctuation, whitespace or Unicode form."""
    # The letter and digit runs joined by single spaces: the same text as replacing every
    # run of other characters by a space and stripping the ends.
    normalised = word_runs.joined_letter_runs(unicodedata.normalize("NFKC", body).casefold())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def derived_fields(article: CleanedArticle, *, enriched_at: datetime | None = None) -> dict[str, Any]:
    """The fields every ``EnrichedArticle`` gets whatever enrichers run (or none)."""
    return {"enriched_at": enriched_at or utc_now(), "content_fingerprint": content_fingerprint(article.body)}


def without_enrichers(article: CleanedArticle, *, enriched_at: datetime | None = None) -> EnrichedArticle:
    """``article`` as the Enrich stage would emit it with no enrichers configured.

    For places that need an ``EnrichedArticle`` of an article the pipeline has not written
    (``newswire dedup explain`` on a raw record, tests); the stage itself builds on the
    same ``derived_fields``, so the two cannot drift apart.
    """
    return EnrichedArticle.model_validate({**dict(article), **derived_fields(article, enriched_at=enriched_at)})


class _EnrichArticle(beam.DoFn):  # type: ignore[misc]
    def __init__(self, enrichers: Sequence[Enricher]) -> None:
        self._enrichers = list(enrichers)
        self._failures = Metrics.counter("enrich", "failures")

    def setup(self) -> None:
        word_runs.load()  # content_fingerprint's table
        for enricher in self._enrichers:
            enricher.setup()

    def process(self, article: CleanedArticle) -> Any:
        try:
            enriched = self._enrich(article)
        except Exception as error:  # a bug outside any one enricher: this article alone is lost to it
            yield beam.pvalue.TaggedOutput(
                FAILURES, StageFailure.of(article, stage="enrich", error_type="internal_error", error=error)
            )
            return
        self._failures.inc(len(enriched.enrichment_failures))
        for failure in enriched.enrichment_failures:
            yield beam.pvalue.TaggedOutput(
                FAILURES,
                StageFailure.of(
                    article, stage="enrich", error_type="enricher_error", error=f"{failure.enricher}: {failure.error}"
                ),
            )
        yield enriched

    def _enrich(self, article: CleanedArticle) -> EnrichedArticle:
        base: dict[str, Any] = dict(article)  # shallow: keeps nested models as models
        fields = derived_fields(article)
        produced: dict[str, dict[str, Any]] = {}
        failures: list[EnrichmentFailure] = []
        for enricher in self._enrichers:
            try:
                produced[enricher.name] = enricher.enrich(article)
            except Exception as error:
                failures.append(_failure(enricher.name, error))
        merged = {**base, **fields}
        for values in produced.values():
            merged.update(values)
        try:
            enriched = EnrichedArticle.model_validate({**merged, "enrichment_failures": failures})
        except ValidationError:
            # Rare path: find which enricher produced an invalid value by validating each
            # one's output alone, so the failure is pinned on it and the rest survive.
            enriched = self._validate_each(base, fields, produced, failures)
        return enriched

    @staticmethod
    def _validate_each(
        base: dict[str, Any],
        fields: dict[str, Any],
        produced: dict[str, dict[str, Any]],
        failures: list[EnrichmentFailure],
    ) -> EnrichedArticle:
        accepted = dict(fields)
        for name, values in produced.items():
            try:
                EnrichedArticle.model_validate({**base, **accepted, **values})
            except ValidationError as error:
                failures.append(_failure(name, error))
                continue
            accepted.update(values)
        return EnrichedArticle.model_validate({**base, **accepted, "enrichment_failures": failures})


def _failure(enricher: str, error: Exception) -> EnrichmentFailure:
    return EnrichmentFailure(enricher=enricher, error=f"{type(error).__name__}: {error}"[:1000])


class Enrich(beam.PTransform):  # type: ignore[misc]
    """CleanedArticle -> EnrichedArticle; after ``with_failures()``, a tuple whose ``articles``
    are those and whose ``failures`` are the ``StageFailure``s of the enrich stage."""

    def __init__(self, enrichers: Sequence[Enricher]) -> None:
        super().__init__()
        names = [e.name for e in enrichers]
        if len(names) != len(set(names)):
            raise ValueError(f"enricher configured twice: {names}")
        self._enrichers = list(enrichers)
        self._with_failures = False

    def with_failures(self) -> Enrich:
        self._with_failures = True
        return self

    def expand(self, articles: beam.PCollection) -> beam.PCollection | beam.pvalue.DoOutputsTuple:
        outputs = articles | beam.ParDo(_EnrichArticle(self._enrichers)).with_outputs(FAILURES, main="articles")
        return outputs if self._with_failures else outputs.articles
