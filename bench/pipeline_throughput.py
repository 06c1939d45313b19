"""Throughput of broker -> pipeline -> sinks, against kafka-python's own rate as the ceiling.

Starts a private local broker, loads N generated articles into the raw topic, then runs
`newswire pipeline --until-caught-up` (bounded micro-batches on the FnApiRunner) and
measures articles/second and the pipeline process's peak memory. In the same run it
produces and consumes the same records with bare kafka-python: no pipeline can beat
that, so the ratio between the two is the figure to watch.

With ``--per-sink`` it also runs the pipeline with no sink (output to the Kafka topics
only) and with each sink alone, reporting each against the no-sink run, and times each
sink's own ``write`` on the same articles outside Beam. That needs a PostgreSQL server:
a throwaway one is started from the packaged binaries (newswire/testing/postgres.py).

    python -m bench.pipeline_throughput [--articles 20000] [--per-sink] [--variant NAME:VAR=VALUE;VAR=VALUE ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from kafka import KafkaProducer

from connectors.seeds import split_seed_text
from newswire.settings import KafkaSettings, TopicSettings
from newswire.tail import records_to_end
from newswire.testing.corpus import generated_seed_texts
from newswire.testing.deployment import newswire_environment, private_broker, run_topics
from newswire.testing.postgres import PostgresServer, postgres_cluster
from newswire.topics import ensure_topics
from pipeline.sinks.base import Sink
from pipeline.sinks.jsonl import JsonLinesSink
from pipeline.sinks.parquet import ParquetSink
from pipeline.sinks.postgres import PostgresSink
from pipeline.sinks.sqlite import SqliteSink
from schemas import CleanedArticle, EnrichedArticle, SourceKind, SourceRef, decode, encode
from schemas.timestamps import utc_now

REPO = Path(__file__).resolve().parents[1]


def encoded_articles(count: int) -> list[tuple[bytes, bytes]]:
    records = []
    fetched_at = utc_now()
    for name, text in generated_seed_texts(count):
        title, body = split_seed_text(text)
        article = CleanedArticle(
            article_id=f"seed-{Path(name).stem.split('_', 1)[1]}",
            title=title,
            body=body,
            fetched_at=fetched_at,
            source=SourceRef(kind=SourceKind.SEED, name=name),
        )
        records.append((article.article_id.encode(), encode(article)))
    return records


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    started = time.perf_counter()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, compression_type="gzip", enable_idempotence=True
    )
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    return time.perf_counter() - started


def consume_all(kafka: KafkaSettings, topic: str, expected: int) -> float:
    started = time.perf_counter()
    consumed = sum(1 for _ in records_to_end(kafka, topic))
    elapsed = time.perf_counter() - started
    if consumed != expected:
        raise SystemExit(f"read {consumed} records back from {topic}, produced {expected}")
    return elapsed


def run_pipeline(env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one `newswire pipeline --until-caught-up`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "newswire.cli", "pipeline", "--until-caught-up"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"pipeline failed:\n{process.stderr.read() if process.stderr else ''}")
    return elapsed, usage.ru_maxrss * 1024


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
        "--per-sink",
        action="store_true",
        help="also run with no sink and with each sink alone (starts a throwaway PostgreSQL server)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="newswire-bench-"))
    broker = private_broker(work)
    info = broker.start()
    services = ExitStack()
    try:
        postgres = services.enter_context(postgres_cluster()) if args.per_sink else None
        print(f"broker {info.bootstrap}; generating {args.articles} articles", flush=True)
        records = encoded_articles(args.articles)
        megabytes = sum(len(v) for _, v in records) / 1e6
        kafka = KafkaSettings(bootstrap_servers=info.bootstrap)

        baseline_topics = TopicSettings(raw=f"bench.baseline.{uuid.uuid4().hex[:6]}")
        ensure_topics(kafka, baseline_topics)
        produce_s = produce(info.bootstrap, baseline_topics.raw, records)
        consume_s = consume_all(kafka, baseline_topics.raw, len(records))
        ceiling = len(records) / (produce_s + consume_s)

        # name, seconds, articles/s, peak RSS (bytes; none for the ceiling, which runs in this process)
        rows: list[tuple[str, float, float, int | None]] = [
            ("kafka-python produce+consume (ceiling)", produce_s + consume_s, ceiling, None)
        ]
        variants: list[tuple[str, dict[str, str]]] = [("pipeline, default settings", {})]
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
            elapsed, peak_rss = run_pipeline(env)
            rows.append((name, elapsed, len(records) / elapsed, peak_rss))

        no_sink = next((rate for name, _, rate, _ in rows if name.startswith("no sink")), None)
        print(f"\n{len(records)} articles, {megabytes:.1f} MB of JSON, 3 partitions, {os.cpu_count()} cores")
        print(f"{'run':44} {'seconds':>8} {'articles/s':>11} {'vs ceiling':>11} {'vs no sink':>11} {'peak RSS':>10}")
        for name, seconds, rate, rss in rows:
            rss_text = f"{rss / 2**20:.0f} MiB" if rss else "-"
            versus = f"{rate / no_sink:11.3f}" if no_sink and rss else f"{'-':>11}"
            print(f"{name:44} {seconds:8.1f} {rate:11.0f} {rate / ceiling:11.3f} {versus} {rss_text:>10}")

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


if __name__ == "__main__":
    main()
