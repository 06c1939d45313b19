"""The embedded dedup index's read-only view and its own account of what it holds."""

from __future__ import annotations

import functools
import sqlite3
import time
from pathlib import Path

import pytest

from pipeline.dedup import entries, sign
from pipeline.dedup.decide import DedupConfig, decide
from pipeline.dedup.index import IndexLocation
from tests.dedup_articles import OTHER, STORY, T0, article


def _decide_two(config: DedupConfig) -> None:
    index = config.index.open()
    try:
        for item in (article("seed-one", STORY), article("seed-two", OTHER)):
            index.transact(functools.partial(decide, signed=sign(item, config), config=config, now=T0))
    finally:
        index.close()


def test_read_takes_no_write_lock_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    config = DedupConfig(IndexLocation(sqlite_path=path))
    _decide_two(config)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a pipeline worker in the middle of a decision
    index = config.index.open()
    try:
        started = time.monotonic()
        found = index.read(lambda view: view.get_many([entries.identity_key("seed-one")]))
        assert time.monotonic() - started < 1.0, "read() waited for the writer's lock"
        assert found[entries.identity_key("seed-one")]["decision"]["original"] is True
        with pytest.raises(TypeError, match="read-only"):
            index.read(lambda view: view.put(entries.identity_key("seed-one"), {}))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        index.close()


def test_stats_count_entries_by_kind(tmp_path: Path) -> None:
    config = DedupConfig(IndexLocation(sqlite_path=tmp_path / "index.sqlite3"))
    _decide_two(config)
    index = config.index.open()
    try:
        stats = index.stats()
        assert stats.live_entries == stats.entries == index.entry_count()
        assert {kind: kinds.entries for kind, kinds in stats.by_kind.items() if not entries.is_band(f"{kind}:")} == {
            "fp": 2,
            "id": 2,
            "sig": 2,
        }
        bands = {kind for kind in stats.by_kind if entries.is_band(f"{kind}:")}
        assert bands == {"near2", "lede2"}
        assert stats.live_bytes == sum(k.bytes for k in stats.by_kind.values()) > 0
        assert stats.storage_bytes > 0
        owners = {key: entries.band_precedences(entry) for key, entry in index.live_entries("near2")}
        assert len(owners) == stats.by_kind["near2"].entries
        assert {entries.article_of(p) for ps in owners.values() for p in ps} == {"seed-one", "seed-two"}
    finally:
        index.close()
