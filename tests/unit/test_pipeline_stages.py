"""The pipeline's stages on the in-process FnApiRunner, fed by beam.Create instead of Kafka."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipeline.decode import DEAD_LETTERS, DecodeArticles
from pipeline.dedup import DUPLICATES, ORIGINALS, Deduplicate
from pipeline.enrich import Enrich, content_fingerprint, without_enrichers
from pipeline.enrichers import LanguageEnricher, TextStatsEnricher
from pipeline.enrichers.base import Enricher
from pipeline.kafka_io import KafkaRecord
from schemas import CleanedArticle, EnrichedArticle, SourceKind, SourceRef, encode

FETCHED = datetime(2026, 3, 1, tzinfo=UTC)


def _pipeline() -> beam.Pipeline:
    return beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))


def _cleaned(
    article_id: str, body: str, *, fetched_at: datetime = FETCHED, published: datetime | None = None
) -> CleanedArticle:
    return CleanedArticle(
        article_id=article_id,
        title=f"About {article_id}",
        body=body,
        fetched_at=fetched_at,
        published_at=published,
        source=SourceRef(kind=SourceKind.SEED, name="test"),
    )


def _enriched(cleaned: CleanedArticle) -> EnrichedArticle:
    return without_enrichers(cleaned, enriched_at=FETCHED)


def _record(offset: int, value: bytes) -> KafkaRecord:
    return KafkaRecord("raw", 0, offset, b"key", value, 0)


def test_decode_routes_bad_records_to_dead_letters_with_their_position() -> None:
    good = encode(_cleaned("seed-a", "Some body text."))
    records = [_record(0, good), _record(1, b"not json"), _record(2, b"x" * 5000), _record(3, good)]
    with _pipeline() as pipeline:
        decoded = pipeline | beam.Create(records) | DecodeArticles(max_record_bytes=4096)
        assert_that(decoded.articles | beam.Map(lambda a: a.article_id), equal_to(["seed-a", "seed-a"]), label="good")
        assert_that(
            decoded[DEAD_LETTERS] | beam.Map(lambda d: (d.offset, d.error_type, d.error.split(":")[0])),
            equal_to(
                [
                    (1, "invalid_record", "record is not valid JSON"),
                    (2, "too_large", "record of 5000 bytes is over limits.max_article_bytes=4096"),
                ]
            ),
            label="dead",
        )


class _Exploding(Enricher):
    name = "exploding"

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        raise RuntimeError("model fell over")


class _WrongType(Enricher):
    name = "wrong_type"

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        return {"word_count": "many"}


def test_a_failing_enricher_is_recorded_and_the_article_flows_on() -> None:
    seed = _cleaned("seed-a", "The quick brown fox jumps over the lazy dog. " * 20)
    with _pipeline() as pipeline:
        enriched = (
            pipeline
            | beam.Create([seed])
            | Enrich([_Exploding(), TextStatsEnricher(words_per_minute=100), _WrongType(), LanguageEnricher()])
        )
        assert_that(
            enriched
            | beam.Map(
                lambda a: (
                    a.word_count,
                    a.reading_time_seconds,
                    a.detected_language.code,
                    sorted(f.enricher for f in a.enrichment_failures),
                )
            ),
            equal_to([(180, 108, "en", ["exploding", "wrong_type"])]),
        )


def _assert_dedup(
    articles: list[EnrichedArticle], index: Path, originals: list[str], duplicates: list[tuple[str, str, str]]
) -> None:
    with _pipeline() as pipeline:
        decided = pipeline | beam.Create(articles) | Deduplicate(index)
        assert_that(decided[ORIGINALS] | beam.Map(lambda a: a.article_id), equal_to(originals), label="originals")
        assert_that(
            decided[DUPLICATES] | beam.Map(lambda d: (d.article_id, d.duplicate_of, d.layer.value)),
            equal_to(duplicates),
            label="duplicates",
        )


def test_dedup_within_a_batch_keeps_the_earliest_copy(tmp_path: Path) -> None:
    early = FETCHED - timedelta(days=1)
    batch = [
        _enriched(_cleaned("seed-late", "Same wire story.", published=FETCHED)),
        _enriched(_cleaned("seed-early", "Same wire story!", published=early)),
        _enriched(_cleaned("seed-other", "A different story.")),
        _enriched(_cleaned("seed-other", "A different story.", fetched_at=FETCHED + timedelta(hours=1))),
    ]
    _assert_dedup(
        batch,
        tmp_path / "index.sqlite3",
        originals=["seed-early", "seed-other"],
        duplicates=[("seed-late", "seed-early", "exact_content"), ("seed-other", "seed-other", "article_id")],
    )


def test_dedup_remembers_across_batches_and_recognises_a_rerun_of_the_same_records(tmp_path: Path) -> None:
    index = tmp_path / "index.sqlite3"
    first = [_enriched(_cleaned("seed-a", "Story A.")), _enriched(_cleaned("seed-b", "Story B."))]
    _assert_dedup(first, index, originals=["seed-a", "seed-b"], duplicates=[])
    # The same records again (a batch re-run after a crash): still originals, sinks upsert.
    _assert_dedup(first, index, originals=["seed-a", "seed-b"], duplicates=[])
    # A later replay of the same article, and a copy of B under another id: duplicates.
    later = [
        _enriched(_cleaned("seed-a", "Story A.", fetched_at=FETCHED + timedelta(hours=2))),
        _enriched(_cleaned("seed-c", "Story B.", fetched_at=FETCHED + timedelta(hours=2))),
    ]
    _assert_dedup(
        later,
        index,
        originals=[],
        duplicates=[("seed-a", "seed-a", "article_id"), ("seed-c", "seed-b", "exact_content")],
    )


def test_content_fingerprint_ignores_case_punctuation_and_spacing() -> None:
    assert content_fingerprint("Hello,  World!\n\nBye.") == content_fingerprint("hello world bye")
    assert content_fingerprint("Hello world") != content_fingerprint("Hello there world")
