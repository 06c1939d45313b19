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
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue
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

    What the pipeline deduplicates (no enricher's field decides whether an article is a
    copy), and what ``newswire dedup explain`` compares a raw record as; the stage itself
    builds on the same ``derived_fields``, so the two cannot drift apart.
    """
    return EnrichedArticle.model_validate({**dict(article), **derived_fields(article, enriched_at=enriched_at)})


# How many articles of a bundle the stage enriches together, each enricher over all of
# them before the next: the language model and the gazetteer then stay in the CPU's caches
# for a whole group instead of evicting each other at every article, which cost the stage
# a third of its CPU. Each article still leaves with its own timestamp and window.
ENRICHED_TOGETHER = 64


def load_tables(enrichers: Sequence[Enricher]) -> None:
    """Load what the stage reads: content_fingerprint's table and each enricher's resources.

    A worker's ``setup``; also the local service's before it forks batch workers, which then
    share what loaded into the process-wide caches instead of loading it again.
    """
    word_runs.load()
    for enricher in enrichers:
        enricher.setup()


class _EnrichArticle(beam.DoFn):  # type: ignore[misc]
    def __init__(self, enrichers: Sequence[Enricher], together: int = ENRICHED_TOGETHER) -> None:
        self._enrichers = list(enrichers)
        self._together = together
        self._failures = Metrics.counter("enrich", "failures")
        self._waiting: list[WindowedValue] = []

    def setup(self) -> None:
        load_tables(self._enrichers)

    def start_bundle(self) -> None:
        self._waiting = []

    def process(
        self,
        article: CleanedArticle,
        timestamp: Any = beam.DoFn.TimestampParam,
        window: Any = beam.DoFn.WindowParam,
        pane_info: Any = beam.DoFn.PaneInfoParam,
    ) -> Iterator[Any]:
        self._waiting.append(WindowedValue(article, timestamp, (window,), pane_info))
        if len(self._waiting) >= self._together:
            yield from self._enrich_waiting()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._enrich_waiting()

    def _enrich_waiting(self) -> Iterator[Any]:
        waiting, self._waiting = self._waiting, []
        for element, outputs in zip(waiting, self.enrich_all([e.value for e in waiting]), strict=True):
            for output in outputs:
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(output.tag, element.with_value(output.value))
                else:
                    yield element.with_value(output)

    def enrich_all(self, articles: Sequence[CleanedArticle]) -> list[list[Any]]:
        """Each article's outputs, in groups as the stage runs them: its failures, then it enriched.

        An article that cannot be enriched at all has one output, its ``internal_error``.
        """
        outputs: list[list[Any]] = []
        for start in range(0, len(articles), self._together):
            group = articles[start : start + self._together]
            produced: list[dict[str, dict[str, Any]]] = [{} for _ in group]
            failures: list[list[EnrichmentFailure]] = [[] for _ in group]
            for enricher in self._enrichers:
                for article, values, failed in zip(group, produced, failures, strict=True):
                    try:
                        values[enricher.name] = enricher.enrich(article)
                    except Exception as error:
                        failed.append(_failure(enricher.name, error))
            outputs.extend(self._outputs(*each) for each in zip(group, produced, failures, strict=True))
        return outputs

    def _outputs(
        self, article: CleanedArticle, produced: dict[str, dict[str, Any]], failures: list[EnrichmentFailure]
    ) -> list[Any]:
        try:
            enriched = self._merge(article, produced, failures)
        except Exception as error:  # a bug outside any one enricher: this article alone is lost to it
            return [
                beam.pvalue.TaggedOutput(
                    FAILURES, StageFailure.of(article, stage="enrich", error_type="internal_error", error=error)
                )
            ]
        self._failures.inc(len(enriched.enrichment_failures))
        outputs: list[Any] = [
            beam.pvalue.TaggedOutput(
                FAILURES,
                StageFailure.of(
                    article, stage="enrich", error_type="enricher_error", error=f"{failure.enricher}: {failure.error}"
                ),
            )
            for failure in enriched.enrichment_failures
        ]
        outputs.append(enriched)
        return outputs

    def _merge(
        self, article: CleanedArticle, produced: dict[str, dict[str, Any]], failures: list[EnrichmentFailure]
    ) -> EnrichedArticle:
        base: dict[str, Any] = dict(article)  # shallow: keeps nested models as models
        # An article deduplicated before it is enriched has its derived fields already, and
        # the dedup stage's (version, story, copies): those stay as they are.
        fields = {} if isinstance(article, EnrichedArticle) else derived_fields(article)
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

    def __init__(self, enrichers: Sequence[Enricher], together: int = ENRICHED_TOGETHER) -> None:
        super().__init__()
        names = [e.name for e in enrichers]
        if len(names) != len(set(names)):
            raise ValueError(f"enricher configured twice: {names}")
        if together < 1:
            raise ValueError(f"articles enriched together must be at least 1, not {together}")
        self._enrichers = list(enrichers)
        self._together = together
        self._with_failures = False

    def with_failures(self) -> Enrich:
        self._with_failures = True
        return self

    def expand(self, articles: beam.PCollection) -> beam.PCollection | beam.pvalue.DoOutputsTuple:
        enrich = _EnrichArticle(self._enrichers, self._together)
        outputs = articles | beam.ParDo(enrich).with_outputs(FAILURES, main="articles")
        return outputs if self._with_failures else outputs.articles
