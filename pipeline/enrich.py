"""Enrich stage: runs the configured enrichers over each article.

A failing enricher never stops the pipeline: its failure is recorded on the article's
``enrichment_failures`` and the article goes on without that enricher's fields.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from pydantic import ValidationError

from pipeline.enrichers.base import Enricher
from schemas import CleanedArticle, EnrichedArticle, EnrichmentFailure
from schemas.timestamps import utc_now

_WORD_RUN = re.compile(r"[^\W_]+")


def content_fingerprint(body: str) -> str:
    """Equal for bodies that differ only in case, punctuation, whitespace or Unicode form."""
    # The word runs joined by single spaces: the same text as replacing every run of
    # non-word characters by a space and stripping the ends, a third faster.
    normalised = " ".join(_WORD_RUN.findall(unicodedata.normalize("NFKC", body).casefold()))
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


class _EnrichArticle(beam.DoFn):  # type: ignore[misc]
    def __init__(self, enrichers: Sequence[Enricher]) -> None:
        self._enrichers = list(enrichers)
        self._failures = Metrics.counter("enrich", "failures")

    def setup(self) -> None:
        for enricher in self._enrichers:
            enricher.setup()

    def process(self, article: CleanedArticle) -> Any:
        base: dict[str, Any] = dict(article)  # shallow: keeps nested models as models
        fields: dict[str, Any] = {"enriched_at": utc_now(), "content_fingerprint": content_fingerprint(article.body)}
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
        self._failures.inc(len(enriched.enrichment_failures))
        yield enriched

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
    """CleanedArticle -> EnrichedArticle."""

    def __init__(self, enrichers: Sequence[Enricher]) -> None:
        super().__init__()
        names = [e.name for e in enrichers]
        if len(names) != len(set(names)):
            raise ValueError(f"enricher configured twice: {names}")
        self._enrichers = list(enrichers)

    def expand(self, articles: beam.PCollection) -> beam.PCollection:
        return articles | beam.ParDo(_EnrichArticle(self._enrichers))
