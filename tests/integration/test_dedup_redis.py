"""The shared dedup index on a real Redis server: racing workers, and the same decisions as SQLite."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import pytest
import redis as redis_client

from newswire.testing.dedup_corpus import build_corpus
from newswire.testing.dedup_run import run_pipeline
from newswire.testing.redis import RedisServer
from pipeline.dedup import entries
from pipeline.dedup.decide import DedupConfig
from pipeline.dedup.index import IndexLocation
from tests.dedup_articles import SAMPLE_TEXTS, race_on_pairs
from tests.integration.conftest_dedup import redis  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


def test_workers_racing_on_redis_keep_exactly_the_earliest_of_each_pair(redis: RedisServer) -> None:  # noqa: F811
    config = DedupConfig(IndexLocation(redis_url=redis.url, namespace=f"race-{uuid.uuid4().hex}"))
    earlier, left_kept = race_on_pairs(config, (0, 1, 0, 1), pairs=30)
    assert left_kept == earlier


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
    assert index.entry_count() == 2  # and the band layout marker
    time.sleep(0.4)
    assert index.entry_count() == 1, "entries expire after the horizon; the marker never does"
    index.close()


def test_a_namespace_is_marked_with_how_long_band_keys_of_the_earlier_layout_may_live(redis: RedisServer) -> None:  # noqa: F811
    def marker(config: DedupConfig) -> dict[str, float]:
        index = config.index.open()
        try:
            return index.read(lambda view: view.get_many([entries.BAND_LAYOUT_KEY]))[entries.BAND_LAYOUT_KEY]
        finally:
            index.close()

    fresh = DedupConfig(IndexLocation(redis_url=redis.url, namespace=f"fresh-{uuid.uuid4().hex}"))
    assert marker(fresh) == {"legacy_until": 0.0}

    namespace = f"filled-{uuid.uuid4().hex}"
    client = redis_client.Redis.from_url(redis.url)
    client.set(f"{namespace}:near2:12x10:0:{'0' * 20}", '{"p": []}', px=60_000)  # written by the earlier code
    before = time.time()
    filled = DedupConfig(IndexLocation(redis_url=redis.url, namespace=namespace, horizon_s=3600.0))
    until = marker(filled)["legacy_until"]
    assert before + 3600.0 <= until <= time.time() + 3600.0
    assert marker(filled)["legacy_until"] == until, "written once: a later open keeps it"
    assert client.ttl(f"{namespace}:{entries.BAND_LAYOUT_KEY}") == -1, "the marker never expires"
