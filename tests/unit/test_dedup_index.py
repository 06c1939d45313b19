"""The embedded dedup index's read-only view and its own account of what it holds."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.dedup import entries, sign
from pipeline.dedup.decide import Decision, DedupConfig, decide
from pipeline.dedup.index import IndexLocation
from schemas import DuplicateLayer, EnrichedArticle
from tests.dedup_articles import OTHER, STORY, T0, article, edited


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
            "meta": 1,  # the band layout marker
            "sig": 2,
        }
        bands = {kind for kind in stats.by_kind if entries.is_band(f"{kind}:")}
        assert bands == {"near2b", "lede2b"}
        assert stats.live_bytes == sum(k.bytes for k in stats.by_kind.values()) > 0
        assert stats.storage_bytes > 0
        owners = {key: entries.band_precedences(entry) for key, entry in index.live_entries("near2b")}
        assert len(owners) == stats.by_kind["near2b"].entries
        assert {entries.article_of(p) for ps in owners.values() for p in ps} == {"seed-one", "seed-two"}
    finally:
        index.close()


def _record_under_earlier_keys(config: DedupConfig, item: EnrichedArticle) -> None:
    """Decides ``item`` as code of the earlier band key layout did: its bands under the earlier keys."""
    signed = sign(item, config)
    earlier = dataclasses.replace(
        signed,
        near_bands=config.near_scheme.legacy_band_keys(signed.signature),
        story_bands=config.story_scheme.legacy_band_keys(signed.story_signature),
    )
    index = config.index.open()
    try:
        index.transact(functools.partial(decide, signed=earlier, config=config, now=T0))
    finally:
        index.close()


def _decide_copy(config: DedupConfig) -> Decision:
    copy = article("seed-copy", edited(STORY), published=T0 + timedelta(hours=1))
    index = config.index.open()
    try:
        return index.transact(functools.partial(decide, signed=sign(copy, config), config=config, now=T0))
    finally:
        index.close()


def test_articles_recorded_under_the_earlier_band_keys_are_found_while_those_may_live(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    config = DedupConfig(IndexLocation(sqlite_path=path))
    _record_under_earlier_keys(config, article("seed-first", STORY))
    db = sqlite3.connect(path, isolation_level=None)  # as an index filled before the marker existed
    db.execute("DELETE FROM entries WHERE key = ?", (entries.BAND_LAYOUT_KEY,))
    (latest,) = db.execute("SELECT max(expires_at) FROM entries").fetchone()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all in the main file, which is copied next
    db.close()
    shutil.copy(path, tmp_path / "control.sqlite3")

    decision = _decide_copy(config)  # the first open marks the index: it held entries
    assert (decision.original, decision.duplicate_of, decision.layer) == (
        False,
        "seed-first",
        DuplicateLayer.NEAR_DUPLICATE,
    )
    index = config.index.open()
    try:
        marker = index.read(lambda view: view.get_many([entries.BAND_LAYOUT_KEY]))[entries.BAND_LAYOUT_KEY]
        assert marker == {"legacy_until": latest}, "the earlier keys may live as long as the latest entry"
        assert "meta" not in {kind for kind in index.stats().by_kind if entries.is_band(f"{kind}:")}
    finally:
        index.close()

    # Control: once the earlier keys have expired they are not looked up, and the copy goes unseen.
    control = DedupConfig(IndexLocation(sqlite_path=tmp_path / "control.sqlite3"))
    with sqlite3.connect(tmp_path / "control.sqlite3") as db:
        db.execute(
            "INSERT INTO entries VALUES (?, ?, ?)",
            (entries.BAND_LAYOUT_KEY, '{"legacy_until": 0.0}', float("inf")),
        )
    assert _decide_copy(control).original is True


def test_a_new_index_looks_up_only_the_current_band_keys(tmp_path: Path) -> None:
    config = DedupConfig(IndexLocation(sqlite_path=tmp_path / "index.sqlite3"))
    index = config.index.open()
    try:
        marker = index.read(lambda view: view.get_many([entries.BAND_LAYOUT_KEY]))[entries.BAND_LAYOUT_KEY]
    finally:
        index.close()
    assert marker == {"legacy_until": 0.0}
    assert not entries.legacy_bands_live(marker, T0.timestamp())
    assert entries.legacy_bands_live(None, T0.timestamp()), "an index without a marker may hold earlier keys"
