import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.sinks.jsonl import JsonLinesSink
from pipeline.sinks.sqlite import SqliteSink
from schemas import EnrichedArticle, SourceKind, SourceRef
from tests.dedup_articles import REAL_TEXTS


def _article(number: int, title: str = "Title") -> EnrichedArticle:
    return EnrichedArticle(
        article_id=f"seed-{number:06d}",
        title=f"{title} {number}",
        body=f"Body of article {number}.",
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=SourceRef(kind=SourceKind.SEED, name=f"{number:03d}_x.txt"),
        enriched_at=datetime(2026, 1, 1, tzinfo=UTC),
        content_fingerprint=f"{number:064x}",
        word_count=4,
    )


def _jsonl_ids(path: Path) -> list[str]:
    return [json.loads(line)["article_id"] for line in path.read_text().splitlines()]


def test_sqlite_sink_upserts_by_article_id(tmp_path: Path) -> None:
    sink = SqliteSink(tmp_path / "a.sqlite3")
    sink.open()
    sink.write([_article(1), _article(2)])
    sink.write([_article(1, title="Updated"), _article(3)])
    sink.close()
    rows = (
        sqlite3.connect(tmp_path / "a.sqlite3").execute("SELECT article_id, title FROM articles ORDER BY 1").fetchall()
    )
    assert rows == [("seed-000001", "Updated 1"), ("seed-000002", "Title 2"), ("seed-000003", "Title 3")]


def test_sqlite_sink_withdraws_demoted_articles_for_good(tmp_path: Path) -> None:
    from pipeline.sinks.sqlite import search_articles

    sink = SqliteSink(tmp_path / "a.sqlite3")
    sink.open()
    sink.write([_article(1), _article(2), _article(3)])
    sink.withdraw(["seed-000002"])
    sink.withdraw(["seed-000002", "seed-000004"])  # again, and one not written yet
    # Writes that land after the withdrawal (parallel stages, or a re-run) do not bring them back.
    sink.write([_article(2, title="Again"), _article(4)])
    sink.close()
    path = tmp_path / "a.sqlite3"
    rows = sqlite3.connect(path).execute("SELECT article_id FROM articles ORDER BY 1").fetchall()
    assert rows == [("seed-000001",), ("seed-000003",)]
    assert [hit.article_id for hit in search_articles(path, "Body")] == ["seed-000001", "seed-000003"]


def test_append_only_sinks_refuse_to_withdraw(tmp_path: Path) -> None:
    from pipeline.sinks.base import WriteToSink

    with pytest.raises(ValueError, match="cannot withdraw"):
        WriteToSink(JsonLinesSink(tmp_path / "a.jsonl"), withdraw=True)


def test_jsonl_sink_writes_each_article_once(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path / "a.jsonl")
    sink.open()
    sink.write([_article(1), _article(2), _article(1)])
    sink.write([_article(2), _article(3)])
    sink.close()
    reopened = JsonLinesSink(tmp_path / "a.jsonl")
    reopened.open()
    reopened.write([_article(3), _article(1)])
    reopened.close()
    assert _jsonl_ids(tmp_path / "a.jsonl") == ["seed-000001", "seed-000002", "seed-000003"]


def test_jsonl_sink_cuts_the_tail_a_crash_left_before_recording_it(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    sink = JsonLinesSink(path)
    sink.open()
    sink.write([_article(1)])
    # What a process killed after appending but before its ledger commit leaves behind:
    # a complete line and a torn one that the ledger does not know about.
    with open(path, "ab") as out:
        out.write(b'{"article_id": "seed-000002", "title": "Ti')
    sink.write([_article(2), _article(3)])
    sink.close()
    assert _jsonl_ids(path) == ["seed-000001", "seed-000002", "seed-000003"]


def test_jsonl_sink_refuses_a_file_shortened_behind_its_back(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    sink = JsonLinesSink(path)
    sink.open()
    sink.write([_article(1)])
    path.write_bytes(b"")
    with pytest.raises(RuntimeError, match="shorter"):
        sink.write([_article(2)])
    sink.close()


def test_sinks_pickle_without_their_connections(tmp_path: Path) -> None:
    import pickle

    for sink in (SqliteSink(tmp_path / "a.sqlite3"), JsonLinesSink(tmp_path / "a.jsonl")):
        sink.open()
        clone = pickle.loads(pickle.dumps(sink))
        clone.open()
        clone.write([_article(1)])
        clone.close()
        sink.close()


def test_full_text_search_follows_upserts_and_filters(tmp_path: Path) -> None:
    from pipeline.sinks.sqlite import search_articles

    sink = SqliteSink(tmp_path / "a.sqlite3")
    sink.open()
    sink.write([_article(1, title="Harbour strike"), _article(2, title="Election night")])
    sink.write([_article(1, title="Harbour strike ends")])  # an update re-indexes, never duplicates
    sink.close()
    hits = search_articles(tmp_path / "a.sqlite3", "harbour")
    assert [(h.article_id, h.title) for h in hits] == [("seed-000001", "Harbour strike ends 1")]
    assert search_articles(tmp_path / "a.sqlite3", "harbour", source="nope") == []
    assert search_articles(tmp_path / "a.sqlite3", 'body "of) article') != []  # punctuation is not FTS syntax
    assert search_articles(tmp_path / "a.sqlite3", "   ") == []


def test_the_sqlite_sink_reads_back_one_stored_article(tmp_path: Path) -> None:
    from pipeline.sinks.sqlite import stored_article

    path = tmp_path / "a.sqlite3"
    assert stored_article(path, "seed-000001") is None  # no sink file yet
    sink = SqliteSink(path)
    sink.open()
    sink.write([_article(1), _article(2)])
    sink.close()
    assert stored_article(path, "seed-000002") == _article(2)
    assert stored_article(path, "seed-000009") is None


def test_an_article_without_enrichers_is_what_the_enrich_stage_emits_with_none() -> None:
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.enrich import Enrich, without_enrichers
    from schemas import CleanedArticle

    cleaned = CleanedArticle(
        article_id="seed-000001",
        title="Title",
        body="Body,  of the article.",
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=SourceRef(kind=SourceKind.SEED, name="001_x.txt"),
    )
    bare = without_enrichers(cleaned, enriched_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert bare.content_fingerprint and bare.enriched_at == datetime(2026, 1, 2, tzinfo=UTC)
    with beam.Pipeline("FnApiRunner") as pipeline:
        emitted = (
            pipeline
            | beam.Create([cleaned])
            | Enrich([])
            | beam.Map(lambda a: a.model_copy(update={"enriched_at": bare.enriched_at}))
        )
        assert_that(emitted, equal_to([bare]))


def test_the_ledger_finds_written_ids_among_more_than_sqlite_binds(tmp_path: Path) -> None:
    from pipeline.sinks.ledger import already_written

    ledger = sqlite3.connect(tmp_path / "ledger.sqlite3")
    ledger.execute("CREATE TABLE written (article_id TEXT PRIMARY KEY)")
    ledger.executemany("INSERT INTO written VALUES (?)", [(f"seed-{i:06d}",) for i in range(0, 2500, 5)])
    asked = [f"seed-{i:06d}" for i in range(2500)]
    assert already_written(ledger, asked) == {f"seed-{i:06d}" for i in range(0, 2500, 5)}
    assert already_written(ledger, []) == set()


def test_a_batch_reaches_the_full_text_index_as_one_segment_and_matches_its_rows(tmp_path: Path) -> None:
    from newswire.testing.dedup_corpus import real_texts
    from pipeline.sinks.sqlite import search_articles

    texts = real_texts(ground_truth=REAL_TEXTS)[:120]
    batch = [_article(n).model_copy(update={"title": url, "body": body}) for n, (url, body) in enumerate(texts)]
    path = tmp_path / "a.sqlite3"
    sink = SqliteSink(path)
    sink.open()
    sink.write(batch)
    db = sqlite3.connect(path)
    # Row by row, FTS5 flushed a segment per article (each upsert's triggers open a savepoint)
    # and spent its time merging them; a batch must land as one segment.
    assert db.execute("SELECT count(DISTINCT segid) FROM articles_fts_idx").fetchone()[0] == 1
    sink.withdraw([batch[1].article_id, batch[2].article_id])
    rewritten = batch[0].model_copy(update={"title": "Rewritten lede", "body": "A zyzzogeton quuxbar body."})
    # Rewrites re-index, never twice; the same id twice in one batch stores the later record.
    sink.write([batch[0], *batch[3:6], rewritten])
    sink.close()
    db.execute("INSERT INTO articles_fts (articles_fts, rank) VALUES ('integrity-check', 1)")  # index == rows
    stored = dict(db.execute("SELECT article_id, body FROM articles").fetchall())
    assert len(stored) == len(texts) - 2
    assert stored[batch[0].article_id] == "A zyzzogeton quuxbar body."
    assert [h.article_id for h in search_articles(path, "zyzzogeton quuxbar")] == [batch[0].article_id]
    word = texts[1][1].split()[5]
    assert batch[1].article_id not in {h.article_id for h in search_articles(path, word, limit=500)}
