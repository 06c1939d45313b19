"""The dedup layers on the FnApiRunner with the embedded index: near copies, versions, late originals, re-runs."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.dedup.corpus import build_corpus
from bench.dedup.run import run_pipeline
from pipeline.dedup import sign
from pipeline.dedup_decide import DedupConfig, decide
from pipeline.dedup_index import IndexLocation
from pipeline.enrich import content_fingerprint
from schemas import DuplicateNotice, EnrichedArticle, SourceKind, SourceRef

# Real texts copied into tests/ (see its README), so the test needs nothing outside the repo.
SAMPLE_TEXTS = Path(__file__).resolve().parents[1] / "data" / "dedup" / "ground-truth-sample.json"

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STORY = " ".join(
    f"Officials in city number {n} said on Tuesday that the new bridge would open to traffic next spring "
    f"after years of delay and a budget that grew by {n} million."
    for n in range(12)
)
OTHER = " ".join(
    f"The football club announced that player {n} signed a contract extension until {2030 + n} after a season "
    "with many goals."
    for n in range(12)
)


def article(article_id: str, body: str, *, published: datetime = T0, fetched: datetime = T0) -> EnrichedArticle:
    return EnrichedArticle(
        article_id=article_id,
        title=f"Title of {article_id}",
        body=body,
        published_at=published,
        fetched_at=fetched,
        source=SourceRef(kind=SourceKind.SEED, name="test"),
        enriched_at=fetched,
        content_fingerprint=content_fingerprint(body),
    )


def run(articles: list[EnrichedArticle], index: Path) -> tuple[list[EnrichedArticle], list[DuplicateNotice]]:
    config = DedupConfig(IndexLocation(sqlite_path=index))
    outcome = run_pipeline(articles, config, 1, index.parent / f"out-{uuid.uuid4().hex}")
    return sorted(outcome.originals.values(), key=lambda a: a.article_id), outcome.notices


def edited(body: str) -> str:
    return "WIRE (Reuters) - " + body.replace("Tuesday", "Wednesday", 2) + " Copyright 2026 Some Outlet."


def test_a_near_copy_in_the_same_batch_points_at_the_earliest(tmp_path: Path) -> None:
    batch = [
        article("seed-copy", edited(STORY), published=T0 + timedelta(hours=1)),
        article("seed-first", STORY),
        article("seed-other", OTHER),
    ]
    originals, notices = run(batch, tmp_path / "index.sqlite3")
    assert sorted(a.article_id for a in originals) == ["seed-first", "seed-other"]
    (copy,) = notices
    assert (copy.article_id, copy.duplicate_of, copy.layer.value) == ("seed-copy", "seed-first", "near_duplicate")
    assert 0.8 <= copy.similarity < 1.0
    first = next(a for a in originals if a.article_id == "seed-first")
    assert first.version == 1 and first.updated_at is None and first.story_id


def test_a_changed_body_is_a_new_version_and_an_unchanged_one_is_dropped(tmp_path: Path) -> None:
    index = tmp_path / "index.sqlite3"
    run([article("seed-a", STORY)], index)
    later = T0 + timedelta(hours=3)
    originals, notices = run([article("seed-a", STORY + " Update: it opened early.", fetched=later)], index)
    (update,) = originals
    assert (update.version, update.updated_at, notices) == (2, later, [])
    originals, notices = run(
        [article("seed-a", STORY + " Update: it opened early.", fetched=later + T0.resolution)], index
    )
    assert originals == [] and [(n.layer.value, n.duplicate_of) for n in notices] == [("article_id", "seed-a")]


def test_an_earlier_copy_arriving_late_is_kept_and_the_later_one_demoted(tmp_path: Path) -> None:
    index = tmp_path / "index.sqlite3"
    run([article("seed-late", edited(STORY), published=T0 + timedelta(hours=2))], index)
    originals, notices = run([article("seed-early", STORY)], index)
    assert [a.article_id for a in originals] == ["seed-early"]
    (demoted,) = notices
    assert (demoted.article_id, demoted.duplicate_of, demoted.was_original) == ("seed-late", "seed-early", True)
    # Never both dropped: a third copy now points at the earliest.
    _, notices = run([article("seed-third", edited(STORY) + " More.", published=T0 + timedelta(hours=5))], index)
    assert [(n.article_id, n.duplicate_of) for n in notices] == [("seed-third", "seed-early")]


def test_rerunning_the_same_records_after_a_crash_repeats_the_same_decisions(tmp_path: Path) -> None:
    index = tmp_path / "index.sqlite3"
    run([article("seed-first", STORY)], index)
    batch = [article("seed-copy", edited(STORY), published=T0 + timedelta(hours=1)), article("seed-other", OTHER)]
    first = run(batch, index)
    again = run(batch, index)
    for run_result in (first, again):
        originals, notices = run_result
        assert [a.article_id for a in originals] == ["seed-other"]
        assert [(n.article_id, n.duplicate_of, n.layer.value) for n in notices] == [
            ("seed-copy", "seed-first", "near_duplicate")
        ]
    assert first[0][0].story_id == again[0][0].story_id


def random_body(seed: int) -> str:
    words = STORY.split() + OTHER.split()
    return " ".join(random.Random(seed).choices(words, k=300))


def test_two_workers_deciding_one_pair_at_once_keep_exactly_one(tmp_path: Path) -> None:
    config = DedupConfig(IndexLocation(sqlite_path=tmp_path / "index.sqlite3"))
    pairs = [
        (article(f"seed-a{n}", random_body(n)), article(f"seed-b{n}", random_body(n) + " (edited) Copyright."))
        for n in range(20)
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

    threads = [threading.Thread(target=worker, args=(side,)) for side in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each a precedes its b (same time, smaller id): b is dropped, or kept and then demoted by a.
    assert kept - demoted == {a.article_id for a, _ in pairs}


def test_three_shuffles_in_three_batches_keep_the_same_originals(tmp_path: Path) -> None:
    corpus = build_corpus(stories=12, ground_truth=SAMPLE_TEXTS)
    finals = []
    for shuffle in range(3):
        articles = list(corpus.articles)
        random.Random(shuffle).shuffle(articles)
        config = DedupConfig(IndexLocation(sqlite_path=tmp_path / f"index{shuffle}.sqlite3"))
        finals.append(run_pipeline(articles, config, 3, tmp_path / f"run{shuffle}").final_originals())
    assert finals[0] == finals[1] == finals[2]


def test_explain_reports_each_layer_and_the_recorded_decision(tmp_path: Path) -> None:
    from pipeline.dedup_explain import explain

    index = tmp_path / "index.sqlite3"
    first, copy = article("seed-first", STORY), article("seed-copy", edited(STORY), published=T0 + timedelta(hours=1))
    run([first, copy], index)
    config = DedupConfig(IndexLocation(sqlite_path=index))
    opened = config.index.open()
    report = opened.transact(lambda view: explain(first, copy, config, view))
    opened.close()
    by_layer = {c.layer: c for c in report.layers}
    assert by_layer["near_duplicate"].matches and not by_layer["exact_content"].matches
    assert report.recorded["seed-first"]["original"] is True
    assert "near_duplicate" in "\n".join(report.lines())
