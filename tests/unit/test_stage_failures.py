"""What each stage does with the one element it cannot take, in real Beam pipelines: the
element leaves on the failures output, located at its raw record, and the rest go on;
a dependency that is down fails the pipeline instead and is never dead-lettered."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from newswire.logs import OncePerInterval
from pipeline.dead_letters import FAILURES, LocateFailures, RecordPosition, StageFailure
from pipeline.dedup import ORIGINALS, Deduplicate
from pipeline.dedup.entries import identity_key
from pipeline.dedup.index.sqlite import SqliteDedupIndex
from pipeline.dependencies import SinkUnavailable, unavailable_in
from pipeline.enrich import Enrich
from pipeline.enrichers import TextStatsEnricher
from pipeline.enrichers.base import Enricher
from pipeline.microbatch import RetryPolicy
from pipeline.sinks.base import Sink, WriteToSink
from schemas import CleanedArticle, DeadLetter, EnrichedArticle, SourceKind, SourceRef
from schemas.timestamps import utc_now


def _cleaned(article_id: str, body: str = "The quick brown fox jumps over the lazy dog. " * 5) -> CleanedArticle:
    return CleanedArticle(
        article_id=article_id,
        title=f"Title of {article_id}",
        body=body,
        fetched_at=utc_now(),
        source=SourceRef(kind=SourceKind.SEED, name="unit"),
    )


class _RaisesOnOne(Enricher):
    name = "raises_on_one"

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        if article.article_id == "seed-bad":
            raise ValueError("cannot read this one")
        return {}


def _as_cleaned(original: bytes) -> CleanedArticle:
    return CleanedArticle.model_validate_json(original)


def test_an_enricher_that_raises_on_one_article_dead_letters_it_and_the_batch_flows_on() -> None:
    good, bad = _cleaned("seed-good"), _cleaned("seed-bad", "Another body entirely, with words of its own. " * 5)
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        outputs = (
            pipeline
            | beam.Create([good, bad])
            | Enrich([_RaisesOnOne(), TextStatsEnricher(words_per_minute=200)]).with_failures()
        )
        assert_that(
            outputs.articles | beam.Map(lambda a: (a.article_id, a.word_count is not None, len(a.enrichment_failures))),
            equal_to([("seed-good", True, 0), ("seed-bad", True, 1)]),
            label="every article goes on, with what the other enrichers found",
        )
        error = "raises_on_one: ValueError: cannot read this one"
        assert_that(
            outputs[FAILURES]
            | beam.Map(lambda f: (f.stage, f.error_type, f.article_id, f.error, _as_cleaned(f.original))),
            equal_to([("enrich", "enricher_error", "seed-bad", error, bad)]),
            label="and the failure is dead-lettered with the article as the raw topic had it",
        )


def test_failures_are_located_at_their_raw_record_and_get_the_same_id_each_time() -> None:
    article = _cleaned("seed-a")
    failure = StageFailure.of(article, stage="sink:postgres", error_type="write_refused", error=ValueError("no"))
    positions = [
        ("seed-a", RecordPosition("raw", 2, 40, "1999-01-01T00:00:00+00:00")),  # an older copy of the same id
        ("seed-a", RecordPosition("raw", 2, 41, article.fetched_at.isoformat())),
        ("seed-b", RecordPosition("raw", 0, 7, article.fetched_at.isoformat())),
    ]

    def check(letters: Sequence[DeadLetter]) -> None:
        (letter,) = letters
        assert (letter.topic, letter.partition, letter.offset, letter.key) == ("raw", 2, 41, "seed-a")
        assert (letter.stage, letter.error_type, letter.error) == ("sink:postgres", "write_refused", "ValueError: no")
        again = DeadLetter.of(
            stage="sink:postgres", error_type="write_refused", error="other text", topic="raw", partition=2, offset=41
        )
        assert letter.dead_letter_id == again.dead_letter_id, "a re-run of the batch can be dropped by its key"

    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        located = (
            pipeline
            | "Failures" >> beam.Create([failure])
            | LocateFailures(pipeline | "Positions" >> beam.Create(positions), max_original_bytes=1024)
        )
        assert_that(located, check)


class _Refuses(Sink):
    """A sink that refuses one article, or is down altogether."""

    name = "refuses"

    def __init__(self, refused: str | None = None, down: bool = False) -> None:
        self.refused, self.down = refused, down

    def write(self, batch: Sequence[EnrichedArticle]) -> None:
        if self.down:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        if any(a.article_id == self.refused for a in batch):
            raise ValueError(f"{self.refused} breaks a constraint")


def _enriched(*ids: str) -> list[EnrichedArticle]:
    fields = {"enriched_at": utc_now()}
    return [
        EnrichedArticle.model_validate({**dict(_cleaned(i, f"Body {i} " * 20)), **fields, "content_fingerprint": i})
        for i in ids
    ]


def test_a_refused_article_is_found_in_its_batch_and_alone_dead_lettered() -> None:
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        written = pipeline | beam.Create(_enriched("seed-a", "seed-b", "seed-c")) | WriteToSink(_Refuses("seed-b"), 10)
        assert_that(
            written[FAILURES] | beam.Map(lambda f: (f.stage, f.error_type, f.article_id)),
            equal_to([("sink:refuses", "write_refused", "seed-b")]),
        )


def test_a_sink_that_is_down_fails_the_batch_and_dead_letters_nothing() -> None:
    # Runners wrap the worker's exception: what matters is that the outage is named.
    with pytest.raises(Exception) as failed, beam.Pipeline(runner="FnApiRunner") as pipeline:
        written = pipeline | beam.Create(_enriched("seed-a", "seed-b")) | WriteToSink(_Refuses(down=True), 10)
        assert_that(written[FAILURES], equal_to([]))
    assert unavailable_in(failed.value) == "sink:refuses"


def test_an_outage_is_recognised_from_its_text_alone() -> None:
    # Portable runners hand back only the worker's traceback text.
    text = RuntimeError(f"Traceback ...\n{SinkUnavailable('sink:postgres', 'connection refused')} [while running 'X']")
    assert unavailable_in(text) == "sink:postgres"
    assert unavailable_in(RuntimeError("index row size 4016 exceeds btree version 4 maximum 2704")) is None


def test_backoff_doubles_up_to_its_ceiling_and_is_jittered_down_by_at_most_half() -> None:
    policy = RetryPolicy(attempts=3, initial_backoff_s=1.0, max_backoff_s=5.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (30, 5.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4, "jittered"
    with pytest.raises(ValueError, match="initial_backoff_s"):
        RetryPolicy(initial_backoff_s=10, max_backoff_s=1)


def test_reconnect_noise_gets_through_once_a_minute_and_says_how_much_was_held_back() -> None:
    noise = OncePerInterval(interval_s=60)

    def line(name: str, msg: str, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, msg, ("node 1",), None)

    passed = [noise.filter(line("kafka.cluster", "Metadata refresh failed: %s")) for _ in range(200)]
    assert passed.count(True) == 1
    assert not noise.filter(line("kafka.conn", "%s: connect attempt returned error")), "the same library says it again"
    assert noise.filter(line("kafka.conn", "%s: connect attempt failed", logging.WARNING)), "another level"
    assert noise.filter(line("apache_beam.runners.common", "%s")), "another library"
    assert noise.filter(line("pipeline.microbatch", "broker is down")), "the service's own lines all pass"
    assert all(noise.filter(line("kafka.cluster", "Metadata refresh failed: %s", logging.INFO)) for _ in range(3))
    brief = OncePerInterval(interval_s=0.05)
    assert [brief.filter(line("kafka.cluster", "Metadata refresh failed: %s")) for _ in range(4)].count(True) == 1
    time.sleep(0.06)
    record = line("kafka.cluster", "Metadata refresh failed: %s")
    assert brief.filter(record) and getattr(record, "similar_lines_held_back", None) == 3


def test_an_article_whose_dedup_decision_raises_is_dead_lettered_and_the_others_decided(tmp_path: Path) -> None:
    index = tmp_path / "dedup.sqlite3"
    good, bad = _enriched("seed-good", "seed-bad")
    # A damaged entry for one article (a write cut short by an old bug, say): deciding that
    # article raises; it must not take the rest of its batch with it.
    SqliteDedupIndex(index).transact(lambda view: view.put(identity_key("seed-bad"), {"revision": "x"}))
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        decided = pipeline | beam.Create([good, bad]) | Deduplicate(index)
        assert_that(decided[ORIGINALS] | beam.Map(lambda a: a.article_id), equal_to(["seed-good"]), label="kept")
        assert_that(
            decided[FAILURES] | beam.Map(lambda f: (f.stage, f.error_type, f.article_id)),
            equal_to([("dedup", "decide_error", "seed-bad")]),
            label="dead-lettered",
        )
