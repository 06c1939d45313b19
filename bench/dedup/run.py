"""Scores the pipeline's dedup decisions on the generated corpus, beside two offline baselines.

Runs the real ``Deduplicate`` transform on the FnApiRunner over the corpus, cut into
several sequential batches sharing one dedup index as the micro-batch service runs it, or
with ``--through-kafka`` the whole service path (corpus on the raw topic of a private
broker, one real `newswire pipeline --until-caught-up` per batch, decisions read back
from the enriched and duplicates topics). Prints precision, recall and F1 per layer; in
the same run it scores an offline all-pairs exact-Jaccard deduplicator and datasketch's
MinHashLSH on the same shingles and precedence rule, checks that three shuffles of the
corpus keep the same originals, and compares 1 with ``--workers`` worker processes.

    python -m bench.dedup.run [--stories N] [--batches 3] [--workers 2] [--through-kafka]
                              [--redis-url redis://127.0.0.1:6379/0]

The scale figures (200,000 articles, memory, retained bytes) are ``bench.dedup.scale``.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Protocol

from newswire.testing.dedup_corpus import Corpus, build_corpus
from newswire.testing.dedup_run import Outcome, run_pipeline, score
from pipeline.dedup import revision_token
from pipeline.dedup.decide import DedupConfig, precedence
from pipeline.dedup.index import IndexLocation
from pipeline.dedup.signature import jaccard, shingles
from schemas import DuplicateNotice, EnrichedArticle


def run_offline(
    articles: Sequence[EnrichedArticle], near: Callable[[EnrichedArticle, list[str]], str | None]
) -> Outcome:
    """The same precedence rule with an offline near-duplicate test: ``near`` gets the kept ids so far."""
    from pipeline.dedup import notice
    from schemas import DuplicateLayer

    originals: dict[str, EnrichedArticle] = {}
    bodies: dict[str, set[str]] = {}
    by_fingerprint: dict[str, str] = {}
    notices: list[DuplicateNotice] = []
    for article in sorted(articles, key=lambda a: (a.fetched_at, precedence(a))):
        aid = article.article_id
        if aid in bodies:
            if article.content_fingerprint in bodies[aid]:
                notices.append(notice(article, duplicate_of=aid, layer=DuplicateLayer.ARTICLE_ID))
            else:
                bodies[aid].add(article.content_fingerprint)
                if aid in originals:
                    originals[aid] = article.model_copy(update={"version": len(bodies[aid])})
            continue
        bodies[aid] = {article.content_fingerprint}
        if article.content_fingerprint in by_fingerprint:
            owner = by_fingerprint[article.content_fingerprint]
            notices.append(notice(article, duplicate_of=owner, layer=DuplicateLayer.EXACT_CONTENT))
            continue
        owner_id = near(article, list(originals))
        if owner_id is not None:
            notices.append(notice(article, duplicate_of=owner_id, layer=DuplicateLayer.NEAR_DUPLICATE))
            continue
        originals[aid] = article
        by_fingerprint[article.content_fingerprint] = aid
    return Outcome(originals, notices)


def exact_jaccard_baseline(articles: Sequence[EnrichedArticle], threshold: float, size: int) -> Outcome:
    sets = {a.article_id: shingles(a.body, size) for a in articles}

    def near(article: EnrichedArticle, kept: list[str]) -> str | None:
        mine = shingles(article.body, size)
        for other in kept:  # kept is in precedence order, so the first hit is the earliest
            if jaccard(mine, sets[other]) >= threshold:
                return other
        return None

    return run_offline(articles, near)


def datasketch_baseline(articles: Sequence[EnrichedArticle], threshold: float, size: int, perms: int) -> Outcome:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=perms)
    order: dict[str, int] = {}

    def near(article: EnrichedArticle, kept: list[str]) -> str | None:
        signature = MinHash(num_perm=perms)
        signature.update_batch([s.encode() for s in shingles(article.body, size)])
        found = [k for k in lsh.query(signature) if k in order]
        if found:
            return min(found, key=order.__getitem__)
        order[article.article_id] = len(order)
        lsh.insert(article.article_id, signature)
        return None

    return run_offline(articles, near)


class Runner(Protocol):
    def __call__(
        self,
        articles: Sequence[EnrichedArticle],
        config: DedupConfig,
        batches: int,
        work: Path,
        beam_options: Sequence[str] = (),
    ) -> Outcome: ...


def compare_workers(
    corpus: Corpus, args: argparse.Namespace, work: Path, runner_for: Callable[[int], tuple[Runner, list[str]]]
) -> None:
    """The same shuffled corpus with 1 and with N worker processes sharing one index per run;
    ``runner_for(workers)`` is the runner and Beam options for that many."""
    articles = list(corpus.articles)
    random.Random(0).shuffle(articles)
    outcomes = []
    for workers in (1, args.workers):
        location = (
            IndexLocation(redis_url=args.redis_url, namespace=f"bench{time.time_ns()}")
            if args.redis_url
            else IndexLocation(sqlite_path=work / f"workers{workers}.sqlite3")
        )
        run, options = runner_for(workers)
        started = time.monotonic()
        outcomes.append(
            run(
                articles,
                DedupConfig(location, near_threshold=args.threshold),
                args.batches,
                work / f"w{workers}",
                options,
            )
        )
        cut = f", batches cut over {outcomes[-1].pieces} worker processes" if outcomes[-1].pieces else ""
        print(f"{workers} worker(s): {time.monotonic() - started:.1f} s{cut}")
    one, many = outcomes
    same_originals = one.final_originals() == many.final_originals()
    survivors_one, survivors_many = one.survivor_of(), many.survivor_of()
    agree = sum(1 for k, v in survivors_one.items() if survivors_many.get(k) == v)
    print(f"1 vs {args.workers} workers: same originals: {same_originals}; dropped articles leading to the same")
    print(f"  original: {agree}/{len(survivors_one)} ({len(survivors_many)} dropped with {args.workers} workers)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, default=None, help="use only the first N real texts")
    parser.add_argument("--batches", type=int, default=3, help="sequential batches sharing one index")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--workers", type=int, default=2, help="also compare 1 and N worker processes (1: skip)")
    parser.add_argument(
        "--through-kafka",
        action="store_true",
        help="run the whole service path (raw topic, `newswire pipeline`, output topics) on a private broker",
    )
    parser.add_argument("--redis-url", default=None, help="use a Redis index (flushed keys under a fresh namespace)")
    args = parser.parse_args(argv)
    with ExitStack() as services:
        runner: Runner = run_pipeline
        what = "pipeline Deduplicate, FnApiRunner"
        if args.through_kafka:
            if args.redis_url:
                parser.error("--through-kafka uses the embedded index (the service has one Redis namespace)")
            from newswire.testing.dedup_kafka import run_through_kafka
            from newswire.testing.deployment import private_broker

            broker = private_broker(Path(services.enter_context(tempfile.TemporaryDirectory())))
            services.callback(broker.stop)
            bootstrap = broker.start().bootstrap
            runner = functools.partial(run_through_kafka, bootstrap=bootstrap)
            what = "raw topic -> `newswire pipeline` -> output topics"

        def runner_for(workers: int) -> tuple[Runner, list[str]]:
            if args.through_kafka:
                # The service cuts each batch over its own worker processes (pipeline.parallelism),
                # however small: the corpus's batches are below the default parallel_min_records.
                processes = {
                    "NEWSWIRE_PIPELINE__PARALLELISM": str(workers),
                    "NEWSWIRE_PIPELINE__PARALLEL_MIN_RECORDS": "2",
                }
                return functools.partial(run_through_kafka, bootstrap=bootstrap, settings=processes), []
            # The transform alone, on the FnApiRunner's own worker processes.
            many = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
            return runner, many if workers > 1 else []

        report(args, runner, what, runner_for)


def report(
    args: argparse.Namespace, runner: Runner, what: str, runner_for: Callable[[int], tuple[Runner, list[str]]]
) -> None:
    corpus = build_corpus(stories=args.stories)
    print(f"corpus: {len(corpus.articles)} articles from {len({t.story for t in corpus.truth.values()})} real texts")
    header = f"{'':<34}{'precision':>10}{'recall':>9}{'F1':>8}{'pred':>7}{'truth':>7}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        finals: list[set[str]] = []
        for shuffle in range(3):
            articles = list(corpus.articles)
            random.Random(shuffle).shuffle(articles)
            location = (
                IndexLocation(redis_url=args.redis_url, namespace=f"bench{time.time_ns()}")
                if args.redis_url
                else IndexLocation(sqlite_path=work / f"index{shuffle}.sqlite3")
            )
            config = DedupConfig(location, near_threshold=args.threshold)
            started = time.monotonic()
            outcome = runner(articles, config, args.batches, work / f"run{shuffle}")
            elapsed = time.monotonic() - started
            finals.append(outcome.final_originals())
            if shuffle == 0:
                print(f"\n{what}, {args.batches} batches: {elapsed:.1f} s")
                print(header)
                for name, s in score(corpus, outcome).items():
                    print(s.row(name))
        same = finals[0] == finals[1] == finals[2]
        print(f"\norder independence: 3 shuffles x {args.batches} batches give the same originals: {same}")
        if not same:
            differing = (finals[0] | finals[1] | finals[2]) - (finals[0] & finals[1] & finals[2])
            print(f"  differing originals: {sorted(differing)[:10]}")
        if args.workers > 1:
            compare_workers(corpus, args, work, runner_for)
    ordered = sorted(corpus.articles, key=lambda a: (precedence(a), revision_token(a)))
    for name, build in (
        ("offline all-pairs exact Jaccard", lambda: exact_jaccard_baseline(ordered, args.threshold, 3)),
        ("datasketch MinHashLSH (128 perm)", lambda: datasketch_baseline(ordered, args.threshold, 3, 128)),
    ):
        started = time.monotonic()
        outcome = build()
        print(f"\n{name}: {time.monotonic() - started:.1f} s")
        print(header)
        for layer, s in score(corpus, outcome).items():
            if not layer.startswith("story"):
                print(s.row(layer))
    print(json.dumps({"articles": len(corpus.articles)}))


if __name__ == "__main__":
    main()
