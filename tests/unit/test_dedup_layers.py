"""The dedup layers on the FnApiRunner with the embedded index: near copies, versions, late originals, re-runs."""

from __future__ import annotations

import functools
import itertools
import random
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from newswire.testing.dedup_corpus import build_corpus
from newswire.testing.dedup_run import run_pipeline
from pipeline.dedup import sign, transform
from pipeline.dedup.decide import Decision, DedupConfig, decide
from pipeline.dedup.index import IndexLocation, IndexView
from pipeline.dedup.signature import similarity
from schemas import DuplicateNotice, EnrichedArticle
from tests.dedup_articles import OTHER, SAMPLE_TEXTS, STORY, T0, article, edited, race_on_pairs, random_body


def run(articles: list[EnrichedArticle], index: Path) -> tuple[list[EnrichedArticle], list[DuplicateNotice]]:
    config = DedupConfig(IndexLocation(sqlite_path=index))
    outcome = run_pipeline(articles, config, 1, index.parent / f"out-{uuid.uuid4().hex}")
    return sorted(outcome.originals.values(), key=lambda a: a.article_id), outcome.notices


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
    assert first.copies_seen == 1


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


def test_two_workers_deciding_one_pair_at_once_keep_exactly_one(tmp_path: Path) -> None:
    config = DedupConfig(IndexLocation(sqlite_path=tmp_path / "index.sqlite3"))
    earlier, left_kept = race_on_pairs(config, (0, 1), pairs=20)
    # Each a precedes its b (same time, smaller id): b is dropped, or kept and then demoted by a.
    assert left_kept == earlier


def test_three_shuffles_in_three_batches_keep_the_same_originals(tmp_path: Path) -> None:
    corpus = build_corpus(stories=12, ground_truth=SAMPLE_TEXTS)
    finals = []
    for shuffle in range(3):
        articles = list(corpus.articles)
        random.Random(shuffle).shuffle(articles)
        config = DedupConfig(IndexLocation(sqlite_path=tmp_path / f"index{shuffle}.sqlite3"))
        finals.append(run_pipeline(articles, config, 3, tmp_path / f"run{shuffle}").final_originals())
    assert finals[0] == finals[1] == finals[2]


def test_the_decide_batch_sets_how_many_transactions_and_changes_no_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.dedup.index.sqlite import SqliteDedupIndex

    corpus = build_corpus(stories=12, ground_truth=SAMPLE_TEXTS)
    articles = list(corpus.articles)
    random.Random(1).shuffle(articles)
    transactions: list[int] = []
    real_transact = SqliteDedupIndex.transact

    def counted(self: SqliteDedupIndex, decide_in: object) -> object:
        transactions.append(1)
        return real_transact(self, decide_in)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteDedupIndex, "transact", counted)  # the FnApiRunner runs DoFns in this process
    outcomes = {}
    counts = {}
    for size in (7, 10_000):
        transactions.clear()
        config = DedupConfig(IndexLocation(sqlite_path=tmp_path / f"index{size}.sqlite3"), decide_batch=size)
        outcome = run_pipeline(articles, config, 1, tmp_path / f"run{size}")
        outcomes[size] = (
            outcome.final_originals(),
            sorted((n.article_id, n.duplicate_of, n.layer.value, n.was_original) for n in outcome.notices),
        )
        counts[size] = len(transactions)
    assert outcomes[7] == outcomes[10_000]
    assert outcomes[7][1], "the corpus has copies, so the comparison covers decisions of every kind"
    # One bundle here: every signed article (the older versions too) in one transaction, or in groups of 7.
    assert counts[10_000] == 1
    assert counts[7] >= len(articles) // 7


def test_explain_reports_each_layer_and_the_recorded_decision(tmp_path: Path) -> None:
    from pipeline.dedup.explain import explain

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


def test_explain_prints_a_table_not_a_python_dict(tmp_path: Path) -> None:
    import json

    from pipeline.dedup.explain import explain

    index = tmp_path / "index.sqlite3"
    first, copy = article("seed-first", STORY), article("seed-copy", edited(STORY), published=T0 + timedelta(hours=1))
    run([first, copy], index)
    config = DedupConfig(IndexLocation(sqlite_path=index))
    opened = config.index.open()
    report = opened.transact(lambda view: explain(first, copy, config, view))
    opened.close()
    text = "\n".join(report.lines())
    assert "{" not in text and "'original'" not in text
    decided = {line.split()[0]: line for line in report.lines() if line.startswith("    seed-")}
    assert decided["seed-first"].split(None, 1)[1].startswith("original")
    assert "duplicate of seed-first by near_duplicate" in decided["seed-copy"]
    as_json = json.loads(json.dumps(report.to_json()))
    assert as_json["recorded"]["seed-copy"]["duplicate_of"] == "seed-first"
    assert {layer["layer"] for layer in as_json["layers"]} >= {"near_duplicate", "story"}


def test_a_copy_of_a_copy_is_a_duplicate_in_every_arrival_order(tmp_path: Path) -> None:
    # first ~ second ~ third, but third is no copy of first: similarity is not transitive,
    # and the decision must still not depend on which of them arrives first.
    paragraphs = [" ".join(f"b{p}w{i}" for i in range(40)) for p in range(15)]
    first = article("seed-first", " ".join(paragraphs[:13]))
    second = article("seed-second", " ".join([paragraphs[13], *paragraphs[1:13]]), published=T0 + timedelta(hours=1))
    third = article(
        "seed-third", " ".join([paragraphs[13], paragraphs[14], *paragraphs[2:13]]), published=T0 + timedelta(hours=2)
    )
    config = DedupConfig(IndexLocation(sqlite_path=tmp_path / "unused.sqlite3"))
    signed = {a.article_id: sign(a, config) for a in (first, second, third)}
    estimate = {
        pair: similarity(signed[pair[0]].signature, signed[pair[1]].signature)
        for pair in (("seed-first", "seed-second"), ("seed-second", "seed-third"), ("seed-first", "seed-third"))
    }
    assert min(estimate[("seed-first", "seed-second")], estimate[("seed-second", "seed-third")]) > 0.82
    assert estimate[("seed-first", "seed-third")] < 0.78
    for number, order in enumerate(itertools.permutations([first, second, third])):
        index = IndexLocation(sqlite_path=tmp_path / f"index{number}.sqlite3").open()
        kept: set[str] = set()
        demoted: set[str] = set()
        for one in order:  # each in its own batch: one transaction each
            decision = index.transact(functools.partial(decide, signed=signed[one.article_id], config=config, now=T0))
            kept.update([one.article_id] if decision.original else [])
            demoted.update(d.article_id for d in decision.demoted)
        index.close()
        assert kept - demoted == {"seed-first"}, [a.article_id for a in order]


def test_an_older_body_met_in_the_same_batch_is_remembered_for_later_copies(tmp_path: Path) -> None:
    index = tmp_path / "index.sqlite3"
    rewritten = STORY + " " + OTHER  # the newer body adds as much again: copies of the old one no longer match it
    batch = [article("seed-a", STORY), article("seed-a", rewritten, fetched=T0 + timedelta(hours=1))]
    originals, notices = run(batch, index)
    assert [(a.article_id, a.body, a.version) for a in originals] == [("seed-a", rewritten, 2)]
    assert [(n.article_id, n.layer.value) for n in notices] == [("seed-a", "superseded_version")]
    originals, notices = run([article("seed-copy", edited(STORY), published=T0 + timedelta(hours=2))], index)
    assert originals == []
    assert [(n.article_id, n.duplicate_of, n.layer.value) for n in notices] == [
        ("seed-copy", "seed-a", "near_duplicate")
    ]


def test_two_worker_processes_decide_as_one(tmp_path: Path) -> None:
    corpus = build_corpus(stories=12, ground_truth=SAMPLE_TEXTS)
    articles = list(corpus.articles)
    random.Random(3).shuffle(articles)
    outcomes = []
    for workers in (1, 2):
        config = DedupConfig(IndexLocation(sqlite_path=tmp_path / f"index{workers}.sqlite3"))
        options = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
        outcomes.append(run_pipeline(articles, config, 2, tmp_path / f"run{workers}", options))
    one, two = outcomes
    assert one.final_originals() == two.final_originals()
    assert len(one.final_originals()) < len(articles) - 10, "the corpus holds copies to drop"
    assert one.survivor_of() == two.survivor_of()


def test_an_index_written_in_the_earlier_entry_format_still_matches_copies(tmp_path: Path) -> None:
    # Before base64 signatures and bare-precedence band owners: hex, and [precedence, id] pairs.
    config = DedupConfig(IndexLocation(sqlite_path=tmp_path / "index.sqlite3"))
    first = sign(article("seed-first", STORY), config)
    index = config.index.open()

    def write_old_format(view: IndexView) -> None:
        view.put(
            "sig:seed-first",
            {
                "signatures": [first.signature.astype("<u4").tobytes().hex()],
                "story_signature": first.story_signature.astype("<u4").tobytes().hex(),
                "precedence": first.precedence,
                "story": "story-old",
                "copy_of": None,
            },
        )
        for band in first.near_bands:
            view.put(band, {"owners": [[first.precedence, "seed-first"]]})

    index.transact(write_old_format)
    copy = sign(article("seed-copy", edited(STORY), published=T0 + timedelta(hours=1)), config)
    decision = index.transact(lambda view: decide(view, copy, config, T0))
    index.close()
    assert (decision.original, decision.duplicate_of, decision.story_id) == (False, "seed-first", "story-old")


def test_a_band_full_of_forgotten_owners_still_takes_newer_articles(tmp_path: Path) -> None:
    # Same headline and lede, different bodies: one story, no copies. Eight fill each story
    # band's owner list; once the horizon has passed, a newer report must still get listed
    # so that the next one joins its story.
    lede = " ".join(STORY.split()[:70])

    def report(number: int) -> EnrichedArticle:
        tail = " ".join(f"detail{number}x{i}" for i in range(400))
        made = article(f"seed-r{number}", f"{lede} {tail}", published=T0 + timedelta(minutes=number))
        return made.model_copy(update={"title": "The bridge opens next spring"})

    config = DedupConfig(IndexLocation(sqlite_path=tmp_path / "index.sqlite3", horizon_s=1.0))
    index = config.index.open()

    def decide_now(one: EnrichedArticle) -> Decision:
        return index.transact(lambda view: decide(view, sign(one, config), config, T0))

    first_stories = {decide_now(report(n)).story_id for n in range(8)}
    assert len(first_stories) == 1, "the eight reports are one story"
    later = []
    for number in range(8, 14):  # each rewrites the bands (renewing them) as the first eight expire
        time.sleep(0.35)
        later.append(decide_now(report(number)))
    index.close()
    assert all(decision.original for decision in later)
    assert later[-1].story_id == later[-2].story_id


def test_band_groups_meet_every_pair_that_shares_a_band_and_no_other() -> None:
    """The band join groups an article's bands by band group; it must find exactly the pairs that
    one group per band key found, on articles outside the benchmark streams: edited copies, which
    share some bands with their originals and not others, beside unrelated texts."""
    config = DedupConfig(IndexLocation(sqlite_path=Path("unused.sqlite3")))
    bodies = [random_body(n) for n in range(8)]
    texts = [*bodies, *(f"{body} (edited) Copyright." for body in bodies), STORY, edited(STORY), OTHER]
    signed = [
        sign(article(f"seed-a{n}", text, published=T0 + timedelta(minutes=n)), config) for n, text in enumerate(texts)
    ]

    per_band: dict[str, list[tuple[str, str, bytes]]] = {}
    for s in signed:
        for band in s.near_bands:
            per_band.setdefault(band, []).append((s.precedence, s.article.article_id, s.signature.tobytes()))
    expected = sorted(
        pair
        for members in per_band.values()
        if len(members) > 1
        for pair in transform._pairs_in_band(members, config.near_threshold)
    )
    assert expected, "the edited copies share bands with their originals"

    grouped: dict[int, list[tuple[str, str, bytes, tuple[str, ...]]]] = {}
    for s in signed:
        for group, member in transform._band_members(s, transform.BAND_GROUPS):
            assert group == transform.band_group(member[3][0], transform.BAND_GROUPS)
            grouped.setdefault(group, []).append(member)
    assert len(grouped) <= transform.BAND_GROUPS
    found = sorted(pair for item in grouped.items() for pair in transform._similar_pairs(item, config.near_threshold))
    assert found == expected
