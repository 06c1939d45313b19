"""The dedup decisions hold through the whole service path: raw topic, `newswire pipeline`, output topics."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from newswire.testing.dedup_corpus import build_corpus
from newswire.testing.dedup_kafka import run_through_kafka
from newswire.testing.dedup_run import run_pipeline, score
from pipeline.dedup.decide import DedupConfig
from pipeline.dedup.index import IndexLocation
from tests.conftest import KafkaBroker
from tests.dedup_articles import SAMPLE_TEXTS, STORY, T0, article, edited

pytestmark = pytest.mark.integration


def test_the_service_decides_as_the_transform_in_any_order(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    corpus = build_corpus(stories=12, ground_truth=SAMPLE_TEXTS)
    finals = []
    for shuffle in (0, 1):
        articles = list(corpus.articles)
        random.Random(shuffle).shuffle(articles)
        config = DedupConfig(IndexLocation(sqlite_path=tmp_path / f"service{shuffle}.sqlite3"))
        outcome = run_through_kafka(
            articles, config, 2, tmp_path / f"service{shuffle}", bootstrap=kafka_broker.bootstrap
        )
        finals.append(outcome.final_originals())
        if shuffle == 0:
            alone = run_pipeline(
                articles, DedupConfig(IndexLocation(sqlite_path=tmp_path / "alone.sqlite3")), 2, tmp_path / "alone"
            )
            assert outcome.final_originals() == alone.final_originals()
            assert outcome.survivor_of() == alone.survivor_of()
            scores = score(corpus, outcome)
            near = scores["near_duplicate"]
            assert near.correct == near.predicted > 0, "every near-duplicate notice names a copy of its own text"
            assert near.found >= 0.9 * near.relevant
    assert finals[0] == finals[1]


def test_an_earlier_copy_arriving_late_replaces_the_later_one_in_the_sinks(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    late = article("seed-late", edited(STORY), published=T0 + timedelta(hours=2))
    early = article("seed-early", STORY)
    config = DedupConfig(IndexLocation(sqlite_path=tmp_path / "index.sqlite3"))
    outcome = run_through_kafka([late, early], config, 2, tmp_path, bootstrap=kafka_broker.bootstrap)
    assert set(outcome.originals) == {"seed-late", "seed-early"}, "each was published when it arrived"
    assert [(n.article_id, n.duplicate_of, n.was_original) for n in outcome.notices] == [
        ("seed-late", "seed-early", True)
    ]
    with sqlite3.connect(tmp_path / "output" / "articles.sqlite3") as db:
        assert db.execute("SELECT article_id FROM articles").fetchall() == [("seed-early",)]
