"""The limits settings decide every size, and a dead letter is always trimmed to fit its topic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from newswire.settings import BATCH_OVERHEAD_BYTES, DEAD_LETTER_ENVELOPE_BYTES, LimitSettings, Settings, load_settings
from newswire.topics import consumer_config, producer_config, topic_configs
from schemas import DeadLetter, encode
from schemas.dead_letter import fit_dead_letter


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("NEWSWIRE_"):
            monkeypatch.delenv(name)


def test_every_kafka_size_derives_from_the_limits() -> None:
    settings = Settings(limits=LimitSettings(max_article_bytes=3_000_000, enriched_headroom_bytes=100_000))
    limits, topics = settings.limits, settings.topics
    configs = topic_configs(topics, limits)
    assert configs[topics.raw]["max.message.bytes"] == str(3_000_000 + BATCH_OVERHEAD_BYTES)
    assert configs[topics.enriched]["max.message.bytes"] == str(3_100_000 + BATCH_OVERHEAD_BYTES)
    assert configs[topics.dead_letter]["max.message.bytes"] == str(limits.max_dead_letter_bytes + BATCH_OVERHEAD_BYTES)
    assert set(configs) == set(topics.names)
    largest = max(int(c["max.message.bytes"]) for c in configs.values())
    assert producer_config(settings.kafka, limits)["max_request_size"] == largest == limits.max_message_bytes
    consumer = consumer_config(settings.kafka, limits)
    assert consumer["max_partition_fetch_bytes"] == largest <= consumer["fetch_max_bytes"]
    assert limits.max_seed_file_bytes == 3_000_000


def test_a_dead_letter_keeps_what_base64_leaves_of_its_record() -> None:
    limits = LimitSettings(max_dead_letter_bytes=1_000_000)
    assert limits.max_dead_letter_original_bytes == (1_000_000 - DEAD_LETTER_ENVELOPE_BYTES) * 3 // 4
    original = bytes(range(256)) * 10_000  # not UTF-8, so base64 in JSON
    letter = DeadLetter.of(
        stage="decode",
        error_type="too_large",
        error="too large",
        original=original,
        max_original_bytes=limits.max_dead_letter_original_bytes,
        topic="raw",
        partition=0,
        offset=7,
    )
    assert len(encode(letter)) <= limits.max_dead_letter_bytes


def test_limits_are_validated_and_old_names_say_where_they_went(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSWIRE_LIMITS__MAX_ARTICLE_BYTES", "1000")
    with pytest.raises(ValidationError, match="max_article_bytes"):
        load_settings()
    monkeypatch.delenv("NEWSWIRE_LIMITS__MAX_ARTICLE_BYTES")
    monkeypatch.setenv("NEWSWIRE_PIPELINE__MAX_RECORD_BYTES", "2000000")
    with pytest.raises(ValidationError, match=r"max_record_bytes is now limits\.max_article_bytes"):
        load_settings()


def test_fit_trims_the_original_and_keeps_its_size_digest_and_coordinates() -> None:
    original = b"x" * 200_000
    letter = DeadLetter.of(
        stage="decode",
        error_type="invalid_record",
        error="bad",
        original=original,
        max_original_bytes=len(original),
        topic="raw",
        partition=1,
        offset=5,
    )
    assert not letter.original_truncated and letter.original == original
    fitted = fit_dead_letter(letter, 50_000)
    assert len(encode(fitted)) <= 50_000
    assert fitted.original_truncated and fitted.original and original.startswith(fitted.original)
    assert fitted.original_size == 200_000 and fitted.original_sha256 == hashlib.sha256(original).hexdigest()
    assert (fitted.topic, fitted.partition, fitted.offset, fitted.dead_letter_id) == (
        "raw",
        1,
        5,
        letter.dead_letter_id,
    )
    assert fit_dead_letter(fitted, 50_000) == fitted, "a letter that fits is left alone"


def test_fit_shortens_a_huge_error_text_when_the_original_is_not_enough() -> None:
    letter = DeadLetter.of(stage="fetch", error_type="http_error", error="e" * 100_000, source_url="https://x.test/")
    fitted = fit_dead_letter(letter, 20_000)
    assert len(encode(fitted)) <= 20_000 and fitted.error.startswith("eee")


def test_an_enriched_article_over_its_topic_limit_is_a_stage_failure_before_any_write() -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.dead_letter_writer import RefuseOversized
    from pipeline.dead_letters import FAILURES
    from pipeline.enrich import without_enrichers
    from schemas import CleanedArticle, SourceKind, SourceRef
    from schemas.timestamps import utc_now

    def enriched(article_id: str, words: int) -> object:
        cleaned = CleanedArticle(
            article_id=article_id,
            title="A report",
            body="word " * words,
            fetched_at=utc_now(),
            source=SourceRef(kind=SourceKind.SEED, name="test"),
        )
        return without_enrichers(cleaned, enriched_at=utc_now())

    small, large = enriched("seed-small", 10), enriched("seed-large", 2_000)
    limit = len(encode(small)) + 100  # type: ignore[arg-type]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        checked = pipeline | beam.Create([small, large]) | RefuseOversized(limit, limit_name="limits.test_bytes")
        assert_that(checked.fitting | "Ids" >> beam.Map(lambda a: a.article_id), equal_to(["seed-small"]), "fit")
        failures = checked[FAILURES] | "Failures" >> beam.Map(lambda f: (f.article_id, f.stage, f.error_type))
        assert_that(failures, equal_to([("seed-large", "encode", "too_large")]), label="failed")
