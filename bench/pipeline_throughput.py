"""Throughput of broker -> pipeline -> sinks, against kafka-python's own rate as the ceiling.

Starts a private local broker, loads N generated articles into the raw topic, then runs
`newswire pipeline --until-caught-up` (bounded micro-batches on the FnApiRunner) and
measures articles/second and the peak memory of the pipeline and its worker processes. In the same run it
produces and consumes the same records with bare kafka-python: no pipeline can beat
that, so the ratio between the two is the figure to watch. Records are produced as newswire's
connectors publish them (``DurableProducer``, zstd by default), for the ceiling and for the
pipeline's raw topic alike; a second ceiling row produces them with gzip, as this benchmark did
until 2026-12, whose level-9 compression made the ceiling less than half as fast.

The articles resemble a news stream: distinct stories cut from the real benchmark
paragraphs (``bench.dedup.scale.StoryWriter``), of which a share is reprinted by other
outlets as lightly edited wire copies and a smaller share syndicated verbatim; the run
prints the shares it used and how many articles meet another in an LSH band. Beside
the end-to-end rows it prints a cost table: each stage's own work per article, timed
outside Beam in this process on the same articles, in the pipeline's order (decode, the
fingerprint, sign, the index decisions, each enricher and the Enrich stage's merge over the
originals, each sink's write, encode), so the gap between the sum of the work and the
pipeline's rate is visible. ``--old-tree`` adds a row for another checkout's pipeline (e.g.
``git worktree add /tmp/old-newswire <commit>``) on the same records.

With ``--per-sink`` it also runs the pipeline with no sink (output to the Kafka topics
only) and with each sink alone, reporting each against the no-sink run, and times each
sink's own ``write`` on the same articles outside Beam. That needs a PostgreSQL server:
a throwaway one is started from the packaged binaries (newswire/testing/postgres.py).

    python -m bench.pipeline_throughput [--articles 20000] [--per-sink] [--old-tree DIR] [--costs-only]
        [--variant NAME:VAR=VALUE;VAR=VALUE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.dedup.scale import StoryWriter
from newswire import wiring
from newswire.settings import KafkaSettings, LimitSettings, Settings, SinkSettings, TopicSettings
from newswire.tail import records_to_end
from newswire.testing.dedup_corpus import _HEADLINE_PREFIXES, _OUTLETS, _wire_copy, real_texts
from newswire.testing.deployment import newswire_environment, private_broker, run_topics
from newswire.testing.postgres import PostgresServer, postgres_cluster
from newswire.testing.processes import descendants
from newswire.topics import ensure_topics, producer_config
from pipeline.dedup import IndexLocation, kernels, sign
from pipeline.dedup.decide import Decision, DedupConfig, Signed, decide_all
from pipeline.dedup.index import IndexView
from pipeline.enrich import _EnrichArticle, without_enrichers
from pipeline.enrichers.base import Enricher
from pipeline.graph import article_message
from pipeline.sinks.base import Sink
from pipeline.sinks.jsonl import JsonLinesSink
from pipeline.sinks.parquet import ParquetSink
from pipeline.sinks.postgres import PostgresSink
from pipeline.sinks.sqlite import SqliteSink
from schemas import CleanedArticle, EnrichedArticle, SourceKind, SourceRef, decode, encode
from schemas.identity import article_id_for_url
from schemas.producer import DurableProducer
from schemas.timestamps import utc_now

REPO = Path(__file__).resolve().parents[1]
OLD_CODE = "pipeline of --old-tree, its default settings"


# A real stream repeats wire copy: about one article in five reprints another outlet's
# report with light edits, a few syndicate it verbatim, and most are unrelated.
NEAR_COPY_SHARE = 0.20
EXACT_COPY_SHARE = 0.03


@dataclass(frozen=True)
class Stream:
    articles: list[CleanedArticle]
    near_copies: int
    exact_copies: int

    def describe(self) -> str:
        total = len(self.articles)
        return (
            f"{total} articles: {self.near_copies / total:.1%} near copies (wire reprints), "
            f"{self.exact_copies / total:.1%} exact copies, the rest distinct stories"
        )


def news_stream(count: int, *, seed: int = 7) -> Stream:
    """``count`` cleaned articles in fetch order, with the shares of copies above."""
    rng = random.Random(seed)
    writer = StoryWriter(real_texts())
    articles: list[CleanedArticle] = []
    near = exact = 0
    published = datetime(2026, 3, 1, tzinfo=UTC)
    copies_per_story = NEAR_COPY_SHARE / (1 - NEAR_COPY_SHARE - EXACT_COPY_SHARE)
    exact_per_story = EXACT_COPY_SHARE / (1 - NEAR_COPY_SHARE - EXACT_COPY_SHARE)
    for number in itertools.count():
        if len(articles) >= count:
            break
        published += timedelta(seconds=rng.expovariate(1 / 60))
        paragraphs = writer.base(number, rng)
        title = f"{number}: " + " ".join(paragraphs[0].split()[:10])
        url = f"https://www.newsroom{number % 97}.example/{published:%Y/%m/%d}/story-{number}"
        articles.append(_cleaned(url, title, paragraphs, published))
        # Poisson-like: usually none, sometimes several outlets reprint the same report.
        while len(articles) < count and rng.random() < copies_per_story / (1 + copies_per_story):
            outlet = rng.randrange(len(_OUTLETS))
            when = published + timedelta(minutes=rng.randrange(1, 240))
            copy_url = f"https://www.{_OUTLETS[outlet][0]}/news/{number}-{near}"
            headline = f"{rng.choice(_HEADLINE_PREFIXES)} {title}"
            articles.append(_cleaned(copy_url, headline, _wire_copy(paragraphs, rng, outlet), when))
            near += 1
        if len(articles) < count and rng.random() < exact_per_story:
            when = published + timedelta(minutes=rng.randrange(1, 120))
            articles.append(_cleaned(f"https://syndication.example/{number}", title, paragraphs, when))
            exact += 1
    articles.sort(key=lambda a: a.fetched_at)
    return Stream(articles[:count], near, exact)


def _cleaned(url: str, title: str, paragraphs: list[str], published: datetime) -> CleanedArticle:
    return CleanedArticle(
        article_id=article_id_for_url(url),
        canonical_url=url,
        title=title,
        body="\n\n".join(paragraphs),
        published_at=published,
        fetched_at=published + timedelta(minutes=3),
        source=SourceRef(kind=SourceKind.PAGE, name=url.split("/")[2], url=url),
    )


def encoded_articles(stream: Stream) -> list[tuple[bytes, bytes]]:
    return [(article.article_id.encode(), encode(article)) for article in stream.articles]


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], *, compression: str | None = None) -> float:
    """Publish ``records`` as newswire's connectors do (``DurableProducer`` with the default client
    settings, so zstd, unless ``compression`` says otherwise): the ceiling then costs what a
    deployment's producers cost, and the pipeline reads the raw topic it reads in production."""
    started = time.perf_counter()
    config = producer_config(KafkaSettings(bootstrap_servers=bootstrap), LimitSettings())
    producer = DurableProducer(config.with_options(compression_type=compression) if compression else config)
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.close()
    return time.perf_counter() - started


def consume_all(kafka: KafkaSettings, topic: str, expected: int) -> float:
    started = time.perf_counter()
    consumed = sum(1 for _ in records_to_end(kafka, topic))
    elapsed = time.perf_counter() - started
    if consumed != expected:
        raise SystemExit(f"read {consumed} records back from {topic}, produced {expected}")
    return elapsed


@dataclass(frozen=True)
class Memory:
    """Peaks over a process tree: resident sizes summed, and proportional set sizes summed.

    Forked batch workers share the pages their parent loaded (the models, the gazetteer)
    until they write to them; summed RSS counts each shared page once per process, summed
    PSS splits it between them, so PSS is what the tree takes from the machine.
    """

    rss_bytes: int
    pss_bytes: int


def run_pipeline(env: dict[str, str], tree: Path = REPO) -> tuple[float, Memory]:
    """Wall seconds and peak memory of one `newswire pipeline --until-caught-up` of the checkout ``tree``,
    over the process and the worker processes it started."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "newswire.cli", "pipeline", "--until-caught-up"],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = TreeMemory(process.pid)
    peak.start()
    _, errors = process.communicate()
    elapsed = time.perf_counter() - started
    peak.stop()
    if process.returncode != 0:
        raise SystemExit(f"pipeline failed:\n{errors}")
    return elapsed, Memory(peak.peak_rss_bytes, peak.peak_pss_bytes)


class TreeMemory:
    """The largest memory of a process and all its descendants together (its Beam workers), sampled."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self._pid, self._every_s = pid, every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_rss_bytes = 0
        self.peak_pss_bytes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(self._every_s):
            pids = descendants(self._pid)
            self.peak_rss_bytes = max(self.peak_rss_bytes, sum(_status_kib(pid, "VmRSS:") * 1024 for pid in pids))
            self.peak_pss_bytes = max(self.peak_pss_bytes, sum(_pss_kib(pid) * 1024 for pid in pids))


def _status_kib(pid: int, field: str, name: str = "status") -> int:
    try:
        status = Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    return _status_kib(pid, "Pss:", name="smaps_rollup")


def sink_variants(postgres: PostgresServer) -> list[tuple[str, dict[str, str]]]:
    """The no-sink run and one run per sink alone; each PostgreSQL run gets a fresh database."""
    variants = [("no sink (Kafka topics only)", {"NEWSWIRE_SINKS__ENABLED": "[]"})]
    for sink in ("sqlite", "jsonl", "postgres", "parquet"):
        overrides = {"NEWSWIRE_SINKS__ENABLED": json.dumps([sink])}
        if sink == "postgres":
            database = postgres.database()
            overrides["NEWSWIRE_SINKS__POSTGRES_DSN"] = database.dsn
            overrides["NEWSWIRE_SINKS__POSTGRES_PASSWORD"] = database.password.get_secret_value()
        variants.append((f"sink alone: {sink}", overrides))
    return variants


def as_enriched(records: list[tuple[bytes, bytes]]) -> list[EnrichedArticle]:
    """The records as the sinks receive them; enrichment itself is not what is measured here."""
    enriched_at = utc_now()
    articles = []
    for _, value in records:
        cleaned = decode(value, CleanedArticle)
        articles.append(
            EnrichedArticle(
                **cleaned.model_dump(),
                enriched_at=enriched_at,
                content_fingerprint=hashlib.sha256(cleaned.body.encode()).hexdigest(),
                word_count=len(cleaned.body.split()),
            )
        )
    return articles


def sink_write_rate(sink: Sink, articles: list[EnrichedArticle], batch_size: int = 500) -> float:
    """Articles per second through ``sink.write`` alone, in the pipeline's batch size."""
    sink.open()
    try:
        started = time.perf_counter()
        for start in range(0, len(articles), batch_size):
            sink.write(articles[start : start + batch_size])
        return len(articles) / (time.perf_counter() - started)
    finally:
        sink.close()


@dataclass(frozen=True)
class StageCost:
    stage: str
    seconds: float
    articles: int

    @property
    def ms_per_article(self) -> float:
        return 1000 * self.seconds / max(self.articles, 1)


def _enrich_all(enricher: Enricher, articles: Sequence[CleanedArticle]) -> None:
    for article in articles:
        enricher.enrich(article)


def _timed(stage: str, count: int, work: Callable[[], object]) -> StageCost:
    # CPU time of this process, not wall time: on a shared machine waiting for a core
    # would otherwise swamp the work itself.
    started = time.process_time()
    work()
    return StageCost(stage, time.process_time() - started, count)


def stage_costs(records: list[tuple[bytes, bytes]], work: Path) -> tuple[list[StageCost], str]:
    """Each stage's own work over ``records``, outside Beam, one core, default settings; and the band collisions.

    Every stage gets what the one before produced, in the pipeline's order: dedup decides
    on the decoded articles, and the enrichers, the sinks and the encoder get the originals
    the index kept. Every cost is per article read, so that the sum compares with the rate.
    """
    settings = Settings(sinks=SinkSettings(output_dir=work / "output"))
    config = dataclasses.replace(wiring.dedup_config(settings), index=IndexLocation(sqlite_path=work / "dedup.sqlite3"))
    values = [value for _, value in records]
    costs = []
    cleaned: list[CleanedArticle] = []
    costs.append(_timed("decode", len(values), lambda: cleaned.extend(decode(v, CleanedArticle) for v in values)))
    derived: list[EnrichedArticle] = []
    costs.append(_timed("fingerprint", len(values), lambda: derived.extend(without_enrichers(a) for a in cleaned)))
    signed: list[Signed] = []
    kernels.load()  # start-up, as the service does it before forking: not work an article pays
    costs.append(_timed("dedup: sign", len(values), lambda: signed.extend(sign(a, config) for a in derived)))
    index = config.index.open()
    decisions: list[Decision] = []
    now = utc_now()

    def decide_batches() -> None:
        size = config.decide_batch  # the transform's transaction size
        for start in range(0, len(signed), size):
            batch = sorted(signed[start : start + size], key=lambda s: (s.precedence, s.revision))
            decisions.extend(index.transact(functools.partial(_decide_batch, batch=batch, config=config, now=now)))

    try:
        costs.append(_timed("dedup: index decisions (SQLite)", len(values), decide_batches))
    finally:
        index.close()
    originals = [s.article for s, d in zip(signed, decisions, strict=True) if d.original]
    enrichers = wiring.enrichers(settings)
    for enricher in enrichers:
        enricher.setup()
        enrich_all = functools.partial(_enrich_all, enricher, originals)
        costs.append(_timed(f"enricher: {enricher.name} (originals)", len(values), enrich_all))
    stage = _EnrichArticle(enrichers)
    stage.setup()
    kept: list[EnrichedArticle] = []
    whole = _timed("", len(values), lambda: kept.extend(out for outs in stage.enrich_all(originals) for out in outs))
    own = whole.seconds - sum(c.seconds for c in costs if c.stage.startswith("enricher:"))
    costs.append(StageCost("enrich: merge and validate", max(own, 0.0), len(values)))
    factories: dict[str, Callable[[], Sink]] = {
        "sqlite": lambda: SqliteSink(settings.sinks.sqlite_path),
        "jsonl": lambda: JsonLinesSink(settings.sinks.jsonl_path),
    }
    for name in settings.sinks.enabled:
        if name in factories:
            write = functools.partial(sink_write_rate, factories[name](), kept, settings.sinks.write_batch_size)
            costs.append(_timed(f"sink: {name} write", len(records), write))
    costs.append(_timed("encode for Kafka", len(records), lambda: [article_message(a) for a in kept]))
    return costs, band_collisions(signed)


def _decide_batch(view: IndexView, *, batch: list[Signed], config: DedupConfig, now: datetime) -> list[Decision]:
    return decide_all(view, batch, config, now)


def band_collisions(signed: list[Signed]) -> str:
    """How many articles share at least one LSH band with another: what the index has to compare."""
    shares = []
    for kind, bands_of in (("near", lambda s: s.near_bands), ("story", lambda s: s.story_bands)):
        holders = Counter(band for s in signed for band in set(bands_of(s)))
        meeting = sum(1 for s in signed if any(holders[b] > 1 for b in bands_of(s)))
        shares.append(f"{meeting / max(len(signed), 1):.1%} share a {kind} band with another")
    return "; ".join(shares)


def print_costs(costs: list[StageCost], collisions: str, pipeline_rate: float | None) -> None:
    total_ms = sum(c.ms_per_article for c in costs)
    print(f"\n{'stage work outside Beam, CPU time on one core, per article':62} {'ms/article':>10} {'share':>7}")
    for cost in costs:
        print(f"{cost.stage:62} {cost.ms_per_article:10.3f} {cost.ms_per_article / total_ms:7.1%}")
    print(f"{'sum of the stages':62} {total_ms:10.3f}   = {1000 / total_ms:.0f} articles/s on one core")
    if pipeline_rate:
        print(f"the pipeline with default settings ran at {pipeline_rate / (1000 / total_ms):.2f} x that sum")
    print(f"band collisions: {collisions}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:VAR=VALUE[;VAR=VALUE]",
        help="extra pipeline runs with these NEWSWIRE_* variables, e.g. 'no-enrichers:NEWSWIRE_PIPELINE__ENRICHERS=[]'",
    )
    parser.add_argument(
        "--old-tree",
        type=Path,
        default=None,
        help="also run the pipeline of this checkout (e.g. a git worktree of the code before a change) on the records",
    )
    parser.add_argument("--costs-only", action="store_true", help="only the cost table: no broker, no pipeline runs")
    parser.add_argument(
        "--per-sink",
        action="store_true",
        help="also run with no sink and with each sink alone (starts a throwaway PostgreSQL server)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="newswire-bench-"))
    print(f"generating {args.articles} articles", flush=True)
    stream = news_stream(args.articles)
    records = encoded_articles(stream)
    print(stream.describe(), flush=True)
    if args.costs_only:
        try:
            costs, collisions = stage_costs(records, work / "costs")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print_costs(costs, collisions, None)
        return
    broker = private_broker(work)
    info = broker.start()
    services = ExitStack()
    try:
        postgres = services.enter_context(postgres_cluster()) if args.per_sink else None
        print(f"broker {info.bootstrap}", flush=True)
        megabytes = sum(len(v) for _, v in records) / 1e6
        kafka = KafkaSettings(bootstrap_servers=info.bootstrap)

        baseline_topics = TopicSettings(raw=f"bench.baseline.{uuid.uuid4().hex[:6]}")
        ensure_topics(kafka, baseline_topics)
        produce_s = produce(info.bootstrap, baseline_topics.raw, records)
        consume_s = consume_all(kafka, baseline_topics.raw, len(records))
        ceiling = len(records) / (produce_s + consume_s)
        gzip_topics = TopicSettings(raw=f"bench.baseline-gzip.{uuid.uuid4().hex[:6]}")
        ensure_topics(kafka, gzip_topics)
        gzip_s = produce(info.bootstrap, gzip_topics.raw, records, compression="gzip")
        gzip_s += consume_all(kafka, gzip_topics.raw, len(records))

        # name, seconds, articles/s, peak memory (none for the ceilings, which run in this process)
        rows: list[tuple[str, float, float, Memory | None]] = [
            ("kafka-python produce+consume (ceiling)", produce_s + consume_s, ceiling, None),
            ("  the same, produced with gzip", gzip_s, len(records) / gzip_s, None),
        ]
        variants: list[tuple[str, dict[str, str]]] = [("pipeline, default settings", {})]
        if args.old_tree is not None:
            variants.append((OLD_CODE, {}))
        if postgres is not None:
            variants.extend(sink_variants(postgres))
        for spec in args.variant:
            name, _, assignments = spec.partition(":")
            variants.append((name, dict(a.split("=", 1) for a in assignments.split(";") if a)))
        for name, overrides in variants:
            run_id = uuid.uuid4().hex[:6]
            topics = run_topics(f"bench.{run_id}")
            ensure_topics(kafka, topics)
            produce(info.bootstrap, topics.raw, records)
            env = newswire_environment(
                info.bootstrap,
                topics,
                {
                    "NEWSWIRE_SINKS__OUTPUT_DIR": str(work / run_id / "output"),
                    "NEWSWIRE_PIPELINE__DEDUP_INDEX": str(work / run_id / "dedup.sqlite3"),
                    "NEWSWIRE_PIPELINE__STATE_DIR": str(work / run_id),
                    "NEWSWIRE_OBSERVABILITY__METRICS_PORT": "0",
                    **overrides,
                },
            )
            tree = REPO
            if name == OLD_CODE:
                tree = args.old_tree.resolve()
                env["PYTHONPATH"] = str(tree)  # its own modules, not this checkout's
                # Code from before pipeline.state_dir derives its state directory from the index path.
                env.pop("NEWSWIRE_PIPELINE__STATE_DIR", None)
            print(f"running: {name}", flush=True)
            elapsed, used = run_pipeline(env, tree)
            rows.append((name, elapsed, len(records) / elapsed, used))

        no_sink = next((rate for name, _, rate, _ in rows if name.startswith("no sink")), None)
        print(f"\n{len(records)} articles, {megabytes:.1f} MB of JSON, 3 partitions, {os.cpu_count()} cores")
        print(
            f"{'run':44} {'seconds':>8} {'articles/s':>11} {'vs ceiling':>11} {'vs no sink':>11} "
            f"{'peak PSS':>10} {'peak RSS':>10}"
        )
        for name, seconds, rate, memory in rows:
            pss_text = f"{memory.pss_bytes / 2**20:.0f} MiB" if memory else "-"
            rss_text = f"{memory.rss_bytes / 2**20:.0f} MiB" if memory else "-"
            versus = f"{rate / no_sink:11.3f}" if no_sink and memory else f"{'-':>11}"
            figures = f"{seconds:8.1f} {rate:11.0f} {rate / ceiling:11.3f} {versus} {pss_text:>10} {rss_text:>10}"
            print(f"{name:44} {figures}")
        print("(peak PSS: the process tree's memory with shared pages split between its processes; peak RSS: their")
        print(" resident sizes summed, which counts the pages forked batch workers share with the service once each)")
        default = next(rate for name, _, rate, _ in rows if name == "pipeline, default settings")
        print(f"default settings against the gzip-produced ceiling: {default * gzip_s / len(records):.3f} of its rate")
        old = next((rate for name, _, rate, _ in rows if name == OLD_CODE), None)
        if old:
            print(f"default settings against {args.old_tree}: {default / old:.2f} x its rate")
        print("(the machine is shared: absolute rates are noisy; the ratios within this run are what count)")
        costs, collisions = stage_costs(records, work / "costs")
        print_costs(costs, collisions, default)

        if postgres is not None:
            articles = as_enriched(records)
            sinks: list[Sink] = [
                SqliteSink(work / "alone" / "articles.sqlite3"),
                JsonLinesSink(work / "alone" / "articles.jsonl"),
                PostgresSink(postgres.database().dsn, password=postgres.password),
                ParquetSink(work / "alone" / "parquet"),
            ]
            print(f"\n{'sink.write alone, batches of 500':44} {'articles/s':>11} {'replayed':>11}")
            for sink in sinks:
                first = sink_write_rate(sink, articles)
                again = sink_write_rate(sink, articles)  # the same articles again: a replay
                print(f"{sink.name:44} {first:11.0f} {again:11.0f}")
    finally:
        services.close()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)  # the broker's logs, indexes and sinks: ~2 GB at 20,000 articles


if __name__ == "__main__":
    main()
