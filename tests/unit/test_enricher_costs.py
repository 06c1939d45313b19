"""What keeps enrichment cheap across micro-batches without changing its answers."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from pipeline.enrich import Enrich, _EnrichArticle
from pipeline.enrichers import TextStatsEnricher
from pipeline.enrichers.base import Enricher
from pipeline.enrichers.language import LanguageEnricher
from schemas import CleanedArticle, SourceKind, SourceRef
from schemas.timestamps import utc_now
from tests.dedup_articles import REAL_TEXTS


def test_every_batch_s_language_enricher_shares_one_loaded_model() -> None:
    # Each micro-batch unpickles fresh enrichers; the model (half a second to load) must not be loaded again.
    first = LanguageEnricher()
    again = pickle.loads(pickle.dumps(first))
    assert first._identifier is again._identifier
    article = CleanedArticle(
        article_id="seed-lang",
        title="Die Brücke",
        body="Die neue Brücke über den Fluss wird im nächsten Frühjahr für den Verkehr freigegeben.",
        fetched_at=utc_now(),
        source=SourceRef(kind=SourceKind.SEED, name="test"),
    )
    assert again.enrich(article)["detected_language"].code == "de"


def test_vectorised_language_counting_scores_exactly_as_py3langid_on_real_texts() -> None:
    # The NumPy feature counting must change no score, not even in the last bit.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from newswire.testing.dedup_corpus import real_texts
    from pipeline.enrichers.language import _SAMPLE_CHARS, _shared_identifier

    library = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ours = _shared_identifier()
    assert type(ours) is not LanguageIdentifier
    bodies = [body for _, body in real_texts(minimum_words=0, ground_truth=REAL_TEXTS)]
    samples = [body[:_SAMPLE_CHARS] for body in bodies] + [body[:40].upper() for body in bodies]
    # Shorter than the scanner's deepest state, featureless, uncased scripts, lone multi-byte letters.
    samples += ["", " ", "a", "ab", "12345", "!!!", "\u00e9", "日本語のテキスト", "Россия"]
    assert len(samples) > 300
    for sample in samples:
        assert ours._decide(sample).tobytes() == library._decide(sample).tobytes(), sample[:60]
        assert ours.classify(sample) == library.classify(sample)


class _Recording(Enricher):
    """Notes which article it enriched, in a log it shares with the other enrichers of a test."""

    def __init__(self, name: str, log: list[tuple[str, str]], fails_on: str = "") -> None:
        self.name = name  # type: ignore[misc]  # one class, several enricher names
        self._log = log
        self._fails_on = fails_on

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        self._log.append((self.name, article.article_id))
        if article.article_id == self._fails_on:
            raise ValueError("cannot read this one")
        return {}


def _cleaned(number: int) -> CleanedArticle:
    return CleanedArticle(
        article_id=f"seed-{number}",
        title=f"Story {number}",
        body=f"Story number {number} is told here in a few plain words.",
        fetched_at=datetime(2026, 3, 1, tzinfo=UTC),
        source=SourceRef(kind=SourceKind.SEED, name="test"),
    )


def test_each_enricher_reads_a_group_of_articles_before_the_next_enricher_starts() -> None:
    # What keeps each enricher's tables in the CPU cache: no interleaving within a group.
    log: list[tuple[str, str]] = []
    stage = _EnrichArticle([_Recording("first", log, fails_on="seed-1"), _Recording("second", log)], together=2)
    outputs = stage.enrich_all([_cleaned(n) for n in range(3)])
    assert log == [
        ("first", "seed-0"),
        ("first", "seed-1"),
        ("second", "seed-0"),
        ("second", "seed-1"),
        ("first", "seed-2"),
        ("second", "seed-2"),
    ]
    # Each article's own outputs, in order: its failures, then the article.
    assert [[type(o).__name__ for o in each] for each in outputs] == [
        ["EnrichedArticle"],
        ["TaggedOutput", "EnrichedArticle"],
        ["EnrichedArticle"],
    ]
    assert [f.enricher for f in outputs[1][-1].enrichment_failures] == ["first"]


def test_articles_enriched_together_keep_their_own_timestamps_and_windows() -> None:
    # 7 articles in groups of 3: two groups leave from process, the last from finish_bundle.
    articles = [_cleaned(n) for n in range(7)]
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        outputs = (
            pipeline
            | beam.Create([(a, 25 * n) for n, a in enumerate(articles)])
            | beam.Map(lambda pair: window.TimestampedValue(pair[0], pair[1]))
            | beam.WindowInto(window.FixedWindows(50))
            | Enrich([TextStatsEnricher(), _Recording("fails_on_4", [], fails_on="seed-4")], together=3).with_failures()
        )
        placed = outputs.articles | "Place" >> beam.Map(
            lambda a, t=beam.DoFn.TimestampParam, w=beam.DoFn.WindowParam: (a.article_id, t.micros, w.start.micros)
        )
        failed = outputs.failures | "PlaceFailures" >> beam.Map(
            lambda f, t=beam.DoFn.TimestampParam: (f.error_type, t.micros)
        )
        second = 1_000_000
        assert_that(
            placed,
            equal_to([(f"seed-{n}", 25 * n * second, (25 * n // 50) * 50 * second) for n in range(7)]),
            label="articles",
        )
        assert_that(failed, equal_to([("enricher_error", 100 * second)]), label="failures")


def test_articles_enriched_together_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Enrich([], together=0)
