"""The same workload on the local runner and on Flink, parallelism 1 and 2, in one run.

Starts a private local broker with a raw topic of ``--partitions`` partitions, then for
each runner starts the continuous service the way it is deployed: `newswire pipeline`
(micro-batches on the in-process FnApiRunner) for the local runner, `newswire pipeline
--streaming` (one unbounded job on Flink's in-process cluster, `--flink_master=[local]`)
for Flink. Once a warm-up article has come through (so JVM and job start-up are not
counted), two phases:

* throughput: ``--articles`` distinct articles produced at once; articles/second is that
  count over the time from the first produce until the last article is out (on the
  enriched or the duplicates topic);
* latency: ``--paced`` articles at ``--rate`` per second; each one's end-to-end latency is
  the Kafka timestamp of its output record minus that of its raw record, reported as
  p50 and p99.

    python -m bench.runners [--articles 2000] [--paced 200] [--rate 20] [--partitions 6]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from bench.pipeline_throughput import encoded_articles, news_stream
from newswire.settings import KafkaSettings, TopicSettings
from newswire.testing.deployment import newswire_environment, private_broker, python_worker_pool, run_topics
from newswire.topics import ensure_topics

REPO = Path(__file__).resolve().parents[1]
WORKER_POOL = "{worker_pool}"  # replaced by the address of a Beam Python worker pool started for the run
RUNNERS: list[tuple[str, dict[str, str], list[str]]] = [
    ("FnApiRunner (local micro-batches)", {}, []),
    (
        "FlinkRunner [local], parallelism 1",
        {"NEWSWIRE_PIPELINE__RUNNER": "FlinkRunner", "NEWSWIRE_PIPELINE__PARALLELISM": "1"},
        ["--streaming"],
    ),
    (
        "FlinkRunner [local], parallelism 2",
        {"NEWSWIRE_PIPELINE__RUNNER": "FlinkRunner", "NEWSWIRE_PIPELINE__PARALLELISM": "2"},
        ["--streaming"],
    ),
    (
        # As on a cluster: Python stages run in a worker pool's processes, one per slot,
        # instead of LOOPBACK's single process (and single GIL) in the CLI.
        "FlinkRunner [local], p2, worker pool",
        {
            "NEWSWIRE_PIPELINE__RUNNER": "FlinkRunner",
            "NEWSWIRE_PIPELINE__PARALLELISM": "2",
            "NEWSWIRE_PIPELINE__ENVIRONMENT_TYPE": "EXTERNAL",
            "NEWSWIRE_PIPELINE__ENVIRONMENT_CONFIG": WORKER_POOL,
            "NEWSWIRE_PIPELINE__BEAM_OPTIONS": '["--sdk_worker_parallelism=2"]',
        },
        ["--streaming"],
    ),
]


@dataclass(frozen=True)
class Result:
    name: str
    articles_per_s: float
    p50_s: float
    p99_s: float
    startup_s: float


class Outputs:
    """Every article id seen on the output topics, with its output record's timestamp (ms)."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._consumer = KafkaConsumer(
            *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
        )
        self.seen: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for messages in self._consumer.poll(timeout_ms=200).values():
                with self._lock:
                    for message in messages:
                        if message.key is not None:
                            self.seen.setdefault(message.key, message.timestamp)

    def wait_for(self, keys: set[bytes], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                missing = keys - self.seen.keys()
            if not missing:
                return
            if time.monotonic() > deadline:
                example = sorted(missing)[:3]
                raise SystemExit(f"{len(missing)} article(s) not out after {timeout_s:.0f}s, e.g. {example}")
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


def send(
    producer: KafkaProducer, topic: str, records: list[tuple[bytes, bytes]], rate: float = 0.0
) -> dict[bytes, int]:
    """Produce ``records`` (paced to ``rate``/s when given); each key's raw record timestamp (ms)."""
    futures = []
    started = time.perf_counter()
    for number, (key, value) in enumerate(records):
        if rate:
            time.sleep(max(0.0, started + number / rate - time.perf_counter()))
        futures.append((key, producer.send(topic, key=key, value=value)))
        if rate:
            producer.flush()
    producer.flush()
    return {key: future.get(timeout=30).timestamp for key, future in futures}


def run_runner(
    name: str, overrides: dict[str, str], flags: list[str], broker: str, work: Path, args: argparse.Namespace
) -> Result:
    run_id = uuid.uuid4().hex[:6]
    topics = run_topics(f"bench.{run_id}", partitions=args.partitions)
    ensure_topics(KafkaSettings(bootstrap_servers=broker), topics)
    records = encoded_articles(news_stream(1 + args.articles + args.paced))
    # Each runner gets fresh ids: the dedup index of one run must not see another's articles.
    records = [(key + run_id.encode(), value.replace(key, key + run_id.encode())) for key, value in records]
    warmup, burst, paced = records[:1], records[1 : 1 + args.articles], records[1 + args.articles :]
    env = newswire_environment(
        broker,
        topics,
        {
            "NEWSWIRE_SINKS__OUTPUT_DIR": str(work / run_id / "output"),
            "NEWSWIRE_PIPELINE__DEDUP_INDEX": str(work / run_id / "dedup.sqlite3"),
            "NEWSWIRE_PIPELINE__STATE_DIR": str(work / run_id),
            "NEWSWIRE_PIPELINE__CONSUMER_GROUP": f"bench-{run_id}",
            "NEWSWIRE_PIPELINE__BATCH_INTERVAL_S": "0.5",
            "NEWSWIRE_OBSERVABILITY__METRICS_PORT": "0",
            **overrides,
        },
    )
    log_path = work / f"{run_id}.log"
    with ExitStack() as running:
        if WORKER_POOL in env.values():
            address = running.enter_context(python_worker_pool(env, work / f"{run_id}-workers.log"))
            env = {k: v.replace(WORKER_POOL, address) for k, v in env.items()}
        return measure(name, env, flags, broker, topics, (warmup, burst, paced), log_path, args)


def measure(
    name: str,
    env: dict[str, str],
    flags: list[str],
    broker: str,
    topics: TopicSettings,
    phases: tuple[list[tuple[bytes, bytes]], ...],
    log_path: Path,
    args: argparse.Namespace,
) -> Result:
    warmup, burst, paced = phases
    outputs = Outputs(broker, [topics.enriched, topics.duplicates])
    producer = KafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5, compression_type="zstd")
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "newswire.cli", "pipeline", *flags], cwd=REPO, env=env, stdout=log, stderr=log
        )
    try:
        print(f"{name}: starting (log {log_path})", flush=True)
        started = time.perf_counter()
        send(producer, topics.raw, warmup)
        outputs.wait_for({key for key, _ in warmup}, timeout_s=300)
        startup_s = time.perf_counter() - started

        started = time.perf_counter()
        send(producer, topics.raw, burst)
        outputs.wait_for({key for key, _ in burst}, timeout_s=900)
        articles_per_s = len(burst) / (time.perf_counter() - started)

        raw_ms = send(producer, topics.raw, paced, rate=args.rate)
        outputs.wait_for(set(raw_ms), timeout_s=300)
        latencies = sorted((outputs.seen[key] - raw_ms[key]) / 1000 for key in raw_ms)
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=120)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        producer.close()
        outputs.close()
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(name, articles_per_s, quantiles[49], quantiles[98], startup_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=2_000, help="articles in the throughput burst")
    parser.add_argument("--paced", type=int, default=200, help="articles in the latency phase")
    parser.add_argument("--rate", type=float, default=20.0, help="articles per second in the latency phase")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the raw topic")
    parser.add_argument("--only", default="", help="run only the runners whose name contains this")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="newswire-bench-runners-"))
    broker = private_broker(work)
    info = broker.start()
    try:
        results = [
            run_runner(name, overrides, flags, info.bootstrap, work, args)
            for name, overrides, flags in RUNNERS
            if args.only in name
        ]
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{args.articles} articles burst, {args.paced} paced at {args.rate:g}/s, "
        f"{args.partitions} partitions, {os.cpu_count()} cores"
    )
    print(f"{'runner':36} {'articles/s':>10} {'p50 s':>7} {'p99 s':>7} {'start-up s':>11}")
    for result in results:
        print(
            f"{result.name:36} {result.articles_per_s:10.1f} {result.p50_s:7.2f} {result.p99_s:7.2f} "
            f"{result.startup_s:11.1f}"
        )


if __name__ == "__main__":
    main()
