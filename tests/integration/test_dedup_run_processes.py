"""``run_pipeline`` with worker processes (what ``bench.dedup.scale`` runs by default): each batch
cut into consecutive pieces run at the same time in forked workers, deciding as one process does.

Real Beam pipelines on the FnApiRunner, one SQLite index shared by the workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newswire.testing.dedup_corpus import build_corpus
from newswire.testing.dedup_run import Outcome, run_pipeline, score
from pipeline.dedup.decide import DedupConfig
from pipeline.dedup.index import IndexLocation
from tests.dedup_articles import SAMPLE_TEXTS

pytestmark = pytest.mark.integration


def test_batches_cut_over_two_worker_processes_keep_what_one_process_keeps(tmp_path: Path) -> None:
    corpus = build_corpus(stories=12, ground_truth=SAMPLE_TEXTS)
    articles = corpus.articles

    def run(processes: int) -> Outcome:
        config = DedupConfig(IndexLocation(sqlite_path=tmp_path / f"index{processes}.sqlite3"))
        return run_pipeline(articles, config, 2, tmp_path / f"run{processes}", processes=processes)

    alone, cut = run(1), run(2)
    assert alone.pieces == [] and alone.worker_peak_mib is None
    assert cut.pieces == [2, 2]
    assert cut.worker_peak_mib is not None and cut.worker_peak_mib > 50  # a worker holds Beam and a piece: tens of MiB
    # The pieces are the batch in order, every article in exactly one of them.
    batch = -(-len(articles) // 2)
    for number in range(2):
        pieces = sorted((tmp_path / "run2" / f"batch{number}").glob("piece*/input.jsonl"))
        read = [json.loads(line)["article_id"] for piece in pieces for line in piece.read_text().splitlines()]
        assert read == [a.article_id for a in articles[number * batch : (number + 1) * batch]]
        assert len(pieces) == 2
    assert cut.final_originals() == alone.final_originals()
    assert cut.survivor_of() == alone.survivor_of()
    near = score(corpus, cut)["near_duplicate"]
    assert near.correct == near.predicted > 0
