"""The Parquet sink on a real file system: partitions, one record per id, rolling, and the
states a crash can leave behind (reproduced by stopping a write at the point of death)."""

from __future__ import annotations

import os
import pickle
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.parquet as pq  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pytest

from pipeline.sinks.parquet import LEDGER_NAME, ParquetSink, partition_of, temporary_path
from schemas import EnrichedArticle, SourceKind, SourceRef


def _article(number: int, *, title: str = "Title", published: datetime | None = None) -> EnrichedArticle:
    return EnrichedArticle(
        article_id=f"seed-{number:06d}",
        title=f"{title} {number}",
        body=f"Body of article {number}. " * 20,
        published_at=published,
        fetched_at=datetime(2026, 1, 2, 23, 30, tzinfo=UTC),
        source=SourceRef(kind=SourceKind.SEED, name=f"{number:03d}_x.txt"),
        enriched_at=datetime(2026, 1, 3, tzinfo=UTC),
        content_fingerprint=f"{number:064x}",
        word_count=4,
        keywords=["body", "article"],
    )


def _dataset_ids(root: Path) -> list[str]:
    """What a data-lake reader sees: every visible file under the root, as one dataset."""
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(columns=["article_id"])
    return [str(v) for v in table.column("article_id").to_pylist()]


def _files(root: Path) -> list[Path]:
    return sorted(root.glob("date=*/*.parquet"))


def _open(root: Path, **kwargs: Any) -> ParquetSink:
    sink = ParquetSink(root, **kwargs)
    sink.open()
    return sink


def test_partition_is_the_utc_publication_day_else_the_fetch_day() -> None:
    assert partition_of(_article(1)) == "date=2026-01-02"
    published = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    assert partition_of(_article(1, published=published)) == "date=2025-12-31"


def test_each_article_is_written_once_into_its_date_partition(tmp_path: Path) -> None:
    sink = _open(tmp_path)
    early = datetime(2025, 6, 1, 12, tzinfo=UTC)
    sink.write([_article(1), _article(2, published=early), _article(1, title="Again")])
    sink.write([_article(2, published=early), _article(3)])
    sink.close()
    reopened = _open(tmp_path)
    reopened.write([_article(3), _article(1, title="Later")])
    reopened.close()

    assert sorted(_dataset_ids(tmp_path)) == ["seed-000001", "seed-000002", "seed-000003"]
    partitions = sorted(p.parent.name for p in _files(tmp_path))
    assert partitions == ["date=2025-06-01", "date=2026-01-02"], "one open file per partition, rewritten in place"
    titles = pq.read_table(tmp_path / "date=2026-01-02").column("title").to_pylist()
    assert "Title 1" in titles and not any(t.startswith(("Again", "Later")) for t in titles), "the first version stays"


def test_a_file_is_sealed_at_the_roll_size_and_a_new_one_started(tmp_path: Path) -> None:
    sink = _open(tmp_path, roll_bytes=1)  # every file is full as soon as it is written
    for number in range(3):
        sink.write([_article(number)])
    sink.close()
    assert len(_files(tmp_path)) == 3
    assert sorted(_dataset_ids(tmp_path)) == [f"seed-{n:06d}" for n in range(3)]
    with sqlite3.connect(tmp_path / LEDGER_NAME) as ledger:
        assert ledger.execute("SELECT count(*), sum(sealed), sum(pending) FROM files").fetchone() == (3, 3, 0)


def test_a_file_is_sealed_once_older_than_the_roll_interval(tmp_path: Path) -> None:
    sink = _open(tmp_path)
    sink.write([_article(1)])
    sink.roll_interval_s = 1e-9  # the open file is now "old"
    sink.write([_article(2)])
    sink.close()
    assert len(_files(tmp_path)) == 2
    assert sorted(_dataset_ids(tmp_path)) == ["seed-000001", "seed-000002"]


def test_a_write_killed_before_its_ledger_commit_leaves_nothing_visible_and_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = _open(tmp_path)
    sink.write([_article(1)])

    real_fsync = os.fsync

    def fsync_then_die(descriptor: int) -> None:
        real_fsync(descriptor)
        raise KeyboardInterrupt("killed")  # stands in for SIGKILL: nothing after this runs

    # The first fsync is the temporary file's, just before the ledger commit.
    monkeypatch.setattr("pipeline.sinks.parquet.os.fsync", fsync_then_die)
    with pytest.raises(KeyboardInterrupt):
        sink.write([_article(2)])
    monkeypatch.undo()
    sink.close()

    assert list(tmp_path.glob("date=*/.part-*.tmp")), "the torn write left its temporary file"
    assert _dataset_ids(tmp_path) == ["seed-000001"], "readers see only the complete file"
    restarted = _open(tmp_path)
    assert not list(tmp_path.glob("date=*/.part-*.tmp")), "open() removes temporary files no ledger entry claims"
    restarted.write([_article(1), _article(2)])
    restarted.close()
    assert sorted(_dataset_ids(tmp_path)) == ["seed-000001", "seed-000002"]


def test_a_write_killed_after_its_commit_but_before_the_rename_is_finished_on_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = _open(tmp_path)
    sink.write([_article(1)])

    def killed_before_rename(name: str) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(sink, "_publish", lambda ledger, name: killed_before_rename(name))
    with pytest.raises(KeyboardInterrupt):
        sink.write([_article(2)])
    monkeypatch.undo()
    sink.close()
    assert _dataset_ids(tmp_path) == ["seed-000001"], "the old complete file is still the visible one"

    restarted = _open(tmp_path)  # finishes the recorded rename
    assert sorted(_dataset_ids(tmp_path)) == ["seed-000001", "seed-000002"]
    restarted.write([_article(2), _article(3)])  # the re-run batch: 2 is recorded, so only 3 is new
    restarted.close()
    ids = _dataset_ids(tmp_path)
    assert Counter(ids) == Counter({"seed-000001": 1, "seed-000002": 1, "seed-000003": 1})
    assert temporary_path(_files(tmp_path)[0]).exists() is False


def test_a_file_removed_behind_the_ledger_is_reported_with_what_to_do(tmp_path: Path) -> None:
    sink = _open(tmp_path)
    sink.write([_article(1)])
    _files(tmp_path)[0].unlink()
    with pytest.raises(RuntimeError, match="missing on disk"):
        sink.write([_article(2)])
    sink.close()


def test_the_sink_pickles_without_its_ledger_and_checks_its_arguments(tmp_path: Path) -> None:
    sink = _open(tmp_path)
    copy = pickle.loads(pickle.dumps(sink))
    assert copy._ledger is None and copy.root == tmp_path
    sink.close()
    with pytest.raises(ValueError, match="compression"):
        ParquetSink(tmp_path, compression="lz5")  # type: ignore[arg-type]  # the wrong value is the test
    with pytest.raises(ValueError, match="roll_bytes"):
        ParquetSink(tmp_path, roll_bytes=0)
