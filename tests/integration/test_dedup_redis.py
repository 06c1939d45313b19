"""The shared dedup index on a real Redis server: racing workers, and the same decisions as SQLite."""

from __future__ import annotations

import random
import threading
import uuid
from pathlib import Path

import pytest

from bench.dedup.corpus import build_corpus
from bench.dedup.run import run_pipeline
from pipeline.dedup import sign
from pipeline.dedup_decide import DedupConfig, decide
from pipeline.dedup_index import IndexLocation
from tests.integration.conftest_dedup import redis  # noqa: F401  (the fixture)
from tests.services import RedisServer
from tests.unit.test_dedup_layers import T0, article, random_body

# Real texts copied into tests/ (see its README), so the test needs nothing outside the repo.
SAMPLE_TEXTS = Path(__file__).resolve().parents[1] / "data" / "dedup" / "ground-truth-sample.json"

pytestmark = pytest.mark.integration


def test_workers_racing_on_redis_keep_exactly_the_earliest_of_each_pair(redis: RedisServer) -> None:  # noqa: F811
    config = DedupConfig(IndexLocation(redis_url=redis.url, namespace=f"race-{uuid.uuid4().hex}"))
    pairs = [
        (article(f"seed-a{n}", random_body(n)), article(f"seed-b{n}", random_body(n) + " (edited) Copyright."))
        for n in range(30)
    ]
    kept: set[str] = set()
    demoted: set[str] = set()
    lock = threading.Lock()

    def worker(side: int) -> None:
        index = config.index.open()
        for pair in pairs:
            signed = sign(pair[side], config)
            decision = index.transact(lambda view, s=signed: decide(view, s, config, T0))
            with lock:
                kept.update([pair[side].article_id] if decision.original else [])
                demoted.update(d.article_id for d in decision.demoted)
        index.close()

    threads = [threading.Thread(target=worker, args=(side,)) for side in (0, 1, 0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kept - demoted == {a.article_id for a, _ in pairs}


def test_the_pipeline_on_redis_decides_as_on_sqlite(redis: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    corpus = build_corpus(stories=10, ground_truth=SAMPLE_TEXTS)
    articles = list(corpus.articles)
    random.Random(1).shuffle(articles)
    on_redis = run_pipeline(
        articles, DedupConfig(IndexLocation(redis_url=redis.url, namespace=uuid.uuid4().hex)), 2, tmp_path / "r"
    )
    on_sqlite = run_pipeline(
        articles, DedupConfig(IndexLocation(sqlite_path=tmp_path / "i.sqlite3")), 2, tmp_path / "s"
    )
    assert on_redis.final_originals() == on_sqlite.final_originals()
    assert sorted((n.article_id, n.duplicate_of, n.layer) for n in on_redis.notices) == sorted(
        (n.article_id, n.duplicate_of, n.layer) for n in on_sqlite.notices
    )
    index = IndexLocation(redis_url=redis.url, namespace="probe", horizon_s=0.2).open()
    index.transact(lambda view: view.put("id:x", {"v": 1}))
    assert index.entry_count() == 1
    import time

    time.sleep(0.4)
    assert index.entry_count() == 0, "entries expire after the horizon"
    index.close()
