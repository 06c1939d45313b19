"""Running the dedup stage over the labelled corpus and scoring it, for tests and benchmarks.

``run_pipeline`` runs the real ``Deduplicate`` transform on the FnApiRunner over articles
cut into sequential batches that share one dedup index, as the micro-batch service does;
``score`` compares what it published with the corpus' ground truth (precision, recall per
layer, stories, versions). ``bench.dedup.run`` prints these beside offline baselines; the
dedup tests assert on them. It never writes outside the work directory it is given.
"""

from __future__ import annotations

import functools
import resource
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from newswire.testing.dedup_corpus import Corpus, Truth
from pipeline.batch_processes import run_pieces
from pipeline.dedup import DUPLICATES, ORIGINALS, Deduplicate
from pipeline.dedup.decide import DedupConfig
from schemas import DuplicateNotice, EnrichedArticle

LAYERS = ("article_id", "exact_content", "near_duplicate")


@dataclass
class Outcome:
    """What a deduplicator published: the originals (latest version per id) and its notices."""

    originals: dict[str, EnrichedArticle]
    notices: list[DuplicateNotice]
    # With worker processes (the service's, or run_pipeline's): how many each batch was cut over.
    pieces: list[int] = field(default_factory=list)
    # run_pipeline's worker processes: the largest peak resident size among them, in MiB.
    worker_peak_mib: float | None = None

    def final_originals(self) -> set[str]:
        demoted = {n.article_id for n in self.notices if n.was_original}
        return set(self.originals) - demoted

    def survivor_of(self) -> dict[str, str]:
        """Each dropped article id -> the kept original its chain of ``duplicate_of`` leads to."""
        finals = self.final_originals()
        duplicate_of: dict[str, str] = {}
        for n in self.notices:  # the latest word on an article wins: a demotion follows its first notice
            if n.article_id != n.duplicate_of:
                duplicate_of[n.article_id] = n.duplicate_of
        survivors = {}
        for article_id in duplicate_of:
            step, hops = article_id, 0
            while step not in finals and step in duplicate_of and hops < 20:
                step, hops = duplicate_of[step], hops + 1
            survivors[article_id] = step
        return survivors


def run_pipeline(
    articles: Sequence[EnrichedArticle],
    config: DedupConfig,
    batches: int,
    work: Path,
    beam_options: Sequence[str] = (),
    *,
    processes: int = 1,
) -> Outcome:
    """``articles`` in ``batches`` sequential batches through ``Deduplicate``, all sharing one index.

    With ``processes`` > 1, each batch is cut into that many consecutive pieces, each run in a
    forked worker process of its own at the same time, as the micro-batch service cuts a large
    batch (``pipeline.batch_processes``); the ``Outcome`` then records the pieces per batch.
    """
    originals: dict[str, EnrichedArticle] = {}
    notices: list[DuplicateNotice] = []
    cut: list[int] = []
    worker_peak_kib = 0
    run = functools.partial(_run_piece, config=config, beam_options=tuple(beam_options))
    size = -(-len(articles) // batches)
    for number in range(batches):
        chunk = list(articles[number * size : (number + 1) * size])
        pieces = _write_pieces(chunk, work / f"batch{number}", processes)
        if len(pieces) == 1:
            run(pieces[0])
        else:
            worker_peak_kib = max(
                [worker_peak_kib, *(c["peak_rss_kib"] for c in run_pieces(pieces, run, processes=processes))]
            )
        cut.append(len(pieces))
        for out in pieces:  # in offset order, as a later piece's upsert replaces an earlier one's
            for path in sorted(out.glob("originals*")):
                for line in path.read_text().splitlines():
                    article = EnrichedArticle.model_validate_json(line)
                    originals[article.article_id] = article  # sinks upsert by id: a later version replaces
            for path in sorted(out.glob("duplicates*")):
                notices.extend(DuplicateNotice.model_validate_json(line) for line in path.read_text().splitlines())
    if processes == 1:
        return Outcome(originals, notices)
    return Outcome(originals, notices, pieces=cut, worker_peak_mib=worker_peak_kib / 1024 if worker_peak_kib else None)


def _write_pieces(chunk: list[EnrichedArticle], out: Path, processes: int) -> list[Path]:
    """The batch cut into at most ``processes`` consecutive pieces of nearly equal size, a directory each.

    A piece comes from a file, as from a topic: beam.Create would pickle and compress every
    article into the pipeline itself, which cost about as much as deduplicating it.
    """
    count = max(1, min(processes, len(chunk)))
    bounds = [len(chunk) * k // count for k in range(count + 1)]
    pieces = []
    for k in range(count):
        piece = out / f"piece{k}" if count > 1 else out
        piece.mkdir(parents=True, exist_ok=True)
        lines = (f"{article.model_dump_json()}\n" for article in chunk[bounds[k] : bounds[k + 1]])
        (piece / "input.jsonl").write_text("".join(lines))
        pieces.append(piece)
    return pieces


def _run_piece(out: Path, *, config: DedupConfig, beam_options: tuple[str, ...]) -> dict[str, int]:
    """``Deduplicate`` over ``out``/input.jsonl, its originals and notices written beside it;
    the process's peak resident size, in KiB."""
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner", *beam_options])) as pipeline:
        decided = (
            pipeline
            | beam.io.ReadFromText(str(out / "input.jsonl"))
            | "Parse" >> beam.Map(EnrichedArticle.model_validate_json)
            | Deduplicate(config)
        )
        _ = (
            decided[ORIGINALS]
            | "O" >> beam.Map(lambda a: a.model_dump_json())
            | "WO" >> beam.io.WriteToText(str(out / "originals"))
        )
        _ = (
            decided[DUPLICATES]
            | "D" >> beam.Map(lambda d: d.model_dump_json())
            | "WD" >> beam.io.WriteToText(str(out / "duplicates"))
        )
    return {"peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


@dataclass(frozen=True)
class Score:
    predicted: int
    correct: int
    relevant: int
    found: int

    def row(self, name: str) -> str:
        p = self.correct / self.predicted if self.predicted else 1.0
        r = self.found / self.relevant if self.relevant else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return f"{name:<34}{p:>10.3f}{r:>9.3f}{f:>8.3f}{self.predicted:>7}{self.relevant:>7}"


def score(corpus: Corpus, outcome: Outcome) -> dict[str, Score]:
    by_id: dict[str, list[Truth]] = {}
    for (aid, _), truth in corpus.truth.items():
        by_id.setdefault(aid, []).append(truth)
    cluster = {aid: truths[0].cluster for aid, truths in by_id.items()}
    story = {aid: truths[0].story for aid, truths in by_id.items()}
    kinds = {aid: {t.kind for t in truths} for aid, truths in by_id.items()}
    finals = outcome.final_originals()
    duplicate_of = {n.article_id: n.duplicate_of for n in outcome.notices if n.article_id != n.duplicate_of}

    def root(aid: str) -> str:
        for _ in range(10):
            if aid in finals or aid not in duplicate_of:
                return aid
            aid = duplicate_of[aid]
        return aid

    # A copy is resolved when it and its cluster's base text end in the same survivor: the
    # earliest copy may rightly be kept in place of the base text.
    base = {cluster[aid]: aid for aid, k in kinds.items() if k & {"original", "follow_up"}}

    def resolved(aid: str) -> bool:
        return root(aid) == root(base[cluster[aid]])

    scores: dict[str, Score] = {}
    for layer in LAYERS:
        predicted = [n for n in outcome.notices if n.layer.value == layer and not n.was_original]
        if layer == "article_id":
            correct = sum(1 for n in predicted if "article_id" in kinds[n.article_id])
            relevant = sum(1 for t in corpus.truth.values() if t.kind == "article_id")
            found = min(correct, relevant)
        else:
            correct = sum(1 for n in predicted if cluster[root(n.duplicate_of)] == cluster[n.article_id])
            truly = [aid for aid, k in kinds.items() if layer in k]
            found = sum(1 for aid in truly if resolved(aid))
            relevant = len(truly)
        scores[layer] = Score(len(predicted), correct, relevant, found)
    updated = [aid for aid, k in kinds.items() if "update" in k]
    versioned = [a for a in outcome.originals.values() if (a.version or 1) > 1]
    scores["update (new version kept)"] = Score(
        len(versioned),
        sum(1 for a in versioned if "update" in kinds[a.article_id]),
        len(updated),
        sum(1 for aid in updated if aid in outcome.originals and (outcome.originals[aid].version or 1) > 1),
    )
    # Over every distinct id: each dropped one must lead to its own cluster's survivor, and
    # each cluster must end with exactly one survivor (never none: both copies dropped).
    distinct = [aid for aid in kinds if aid in base.values() or kinds[aid] & {"near_duplicate", "exact_content"}]
    dropped = [aid for aid in distinct if aid not in finals]
    right = sum(1 for aid in dropped if cluster[root(aid)] == cluster[aid] and root(aid) in finals)
    copies = [aid for aid in distinct if aid not in base.values()]
    scores["all copies (distinct ids)"] = Score(
        len(dropped), right, len(copies), sum(1 for aid in copies if resolved(aid))
    )
    stories = {aid: a.story_id for aid, a in outcome.originals.items() if a.story_id and aid in finals}
    if stories:
        ids = sorted(stories)
        predicted_pairs = truth_pairs = correct_pairs = 0
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                same_predicted, same_truth = stories[a] == stories[b], story[a] == story[b]
                predicted_pairs += same_predicted
                truth_pairs += same_truth
                correct_pairs += same_predicted and same_truth
        scores["story (pairs of originals)"] = Score(predicted_pairs, correct_pairs, truth_pairs, correct_pairs)
    return scores
