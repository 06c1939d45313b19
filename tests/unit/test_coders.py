"""CompactCoder: what crosses the pipeline's shuffles comes back as pickle would give it, and does cross with it."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.coders import coders as beam_coders
from apache_beam.pipeline import PipelineVisitor

from newswire import wiring
from newswire.settings import Settings
from newswire.testing.dedup_corpus import build_corpus
from pipeline.coders import CompactCoder
from pipeline.dead_letters import RecordPosition
from pipeline.dedup import Deduplicate, sign
from pipeline.dedup.decide import DedupConfig
from pipeline.dedup.index import IndexLocation
from pipeline.enrich import _EnrichArticle
from schemas import CleanedArticle, DuplicateLayer, DuplicateNotice, EnrichedArticle, SourceKind, SourceRef
from schemas.article import FeedItem
from tests.dedup_articles import REAL_TEXTS


def _enriched(count: int) -> list[EnrichedArticle]:
    """Real texts through the default enrichers, so nested models (language, countries) are set."""
    corpus = build_corpus(stories=count, ground_truth=REAL_TEXTS).articles
    enrich = _EnrichArticle(wiring.enrichers(Settings()))
    enrich.setup()
    cleaned = [CleanedArticle.model_validate({n: getattr(a, n) for n in CleanedArticle.model_fields}) for a in corpus]
    return [out for outputs in enrich.enrich_all(cleaned) for out in outputs if isinstance(out, EnrichedArticle)]


def _same(decoded: Any, original: Any) -> None:
    """Equal as pickle's copy is: same class, fields, field types and fields set."""
    assert type(decoded) is type(original)
    assert decoded == original
    assert decoded.model_fields_set == original.model_fields_set
    assert [type(v) for v in decoded.__dict__.values()] == [type(v) for v in original.__dict__.values()]
    assert decoded.__pydantic_extra__ == original.__pydantic_extra__
    assert decoded.__pydantic_private__ == original.__pydantic_private__


def _round_trip(value: Any) -> Any:
    coder = CompactCoder(type(value))
    return coder.decode(coder.encode(value))


def test_real_articles_come_back_equal_with_their_fields_set() -> None:
    articles = _enriched(30)
    assert any(a.detected_language is not None for a in articles)  # nested models are exercised
    for article in articles:
        for value in (article, article.model_copy(update={"version": 2, "copies_seen": 3, "story_id": "story-x"})):
            decoded = _round_trip(value)
            _same(decoded, value)
            _same(decoded.source, value.source)
            assert decoded.fetched_at.tzinfo is UTC and decoded.fetched_at == value.fetched_at
            # the same record once published: what the enriched topic would carry
            assert decoded.model_dump_json() == value.model_dump_json()
        cleaned = CleanedArticle.model_validate({n: getattr(article, n) for n in CleanedArticle.model_fields})
        _same(_round_trip(cleaned), cleaned)


def test_signed_articles_keep_their_signatures_writable_and_exact() -> None:
    config = DedupConfig(IndexLocation(sqlite_path=Path("unused.sqlite3")))
    for article in _enriched(10):
        signed = sign(article, config)
        decoded = _round_trip(signed)
        _same(decoded.article, signed.article)
        assert decoded.signature.dtype == signed.signature.dtype
        assert np.array_equal(decoded.signature, signed.signature)
        assert np.array_equal(decoded.story_signature, signed.story_signature)
        assert decoded.signature.flags.writeable
        assert decoded.near_bands == signed.near_bands and type(decoded.near_bands) is type(signed.near_bands)
        assert (decoded.revision, decoded.precedence, decoded.superseded) == (
            signed.revision,
            signed.precedence,
            signed.superseded,
        )


def test_notices_positions_and_enums_round_trip() -> None:
    notice = DuplicateNotice(
        article_id="url-abc",
        duplicate_of="url-def",
        layer=DuplicateLayer.NEAR_DUPLICATE,
        similarity=0.8125,
        canonical_url=None,
        source=SourceRef(kind=SourceKind.FEED, name="wire", url="https://wire.example/feed"),
        detected_at=datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC),
        was_original=True,
    )
    decoded = _round_trip(notice)
    _same(decoded, notice)
    assert decoded.layer is DuplicateLayer.NEAR_DUPLICATE and decoded.source.kind is SourceKind.FEED
    position = RecordPosition("newswire.articles.raw", 2, 12345, "2026-12-01T12:00:00+00:00")
    assert _round_trip(position) == position


def test_a_value_not_of_its_declared_kind_travels_pickled_whole() -> None:
    article = _enriched(1)[0]
    # model_construct skips validation: a naive time and a plain dict where a model is declared
    odd = EnrichedArticle.model_construct(
        **{**dict(article), "fetched_at": datetime(2026, 1, 1, 12, 0), "feed_item": {"feed_url": "x"}}
    )
    decoded = _round_trip(odd)
    assert decoded.__dict__ == odd.__dict__ and decoded.fetched_at.tzinfo is None
    assert type(decoded.feed_item) is dict
    feed = article.model_copy(update={"feed_item": FeedItem(feed_url="https://a.example/feed", title="A")})
    _same(_round_trip(feed), feed)
    # times before the epoch and at microsecond precision are exact
    early = article.model_copy(update={"published_at": datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC)})
    assert _round_trip(early).published_at == early.published_at


def test_encoded_articles_are_smaller_than_pickled_ones() -> None:
    articles = _enriched(20)
    coder = CompactCoder(EnrichedArticle)
    compact = sum(len(coder.encode(a)) for a in articles)
    pickled = sum(len(pickle.dumps(a, pickle.HIGHEST_PROTOCOL)) for a in articles)
    assert compact < pickled


def _coders_of(pipeline: beam.Pipeline) -> dict[str, Any]:
    """Full label of each PCollection's producer -> the coder Beam will encode its elements with."""
    found: dict[str, Any] = {}

    class Visitor(PipelineVisitor):  # type: ignore[misc]
        def visit_value(self, value: Any, producer: Any) -> None:
            if isinstance(value, beam.PCollection):
                found[f"{producer.full_label}.{value.tag}"] = beam.coders.registry.get_coder(value.element_type)

    pipeline.visit(Visitor())
    return found


def test_dedup_groups_articles_and_signatures_as_compact_bytes_never_pickled(tmp_path: Path) -> None:
    pipeline = beam.Pipeline()
    config = DedupConfig(IndexLocation(sqlite_path=tmp_path / "index.sqlite3"))
    _ = pipeline | beam.Create(_enriched(3)) | "Deduplicate" >> Deduplicate(config)
    coders = _coders_of(pipeline)
    # What enters each grouping: articles by id and by body, signed articles into the band join.
    for producer in ("KeyById", "KeyByContent", "KeySigned", "KeyOlder"):
        (coder,) = [c for label, c in coders.items() if label.startswith(f"Deduplicate/{producer}")]
        values = coder.value_coder() if isinstance(coder, beam_coders.TupleCoder) else None
        # bytes: not FastPrimitivesCoder, which pickles a model or a dataclass
        assert "BytesCoder" in repr(values) and "FastPrimitives" not in repr(values), (producer, coder)
    # and what those bytes are: the compact layout, not a pickled model
    article = _enriched(1)[0]
    encoded = CompactCoder(EnrichedArticle).encode(article)
    assert b"EnrichedArticle" not in encoded and b"__pydantic_fields_set__" not in encoded
    assert b"__pydantic_fields_set__" in pickle.dumps(article)
