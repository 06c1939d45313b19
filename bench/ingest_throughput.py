"""Throughput of the live connectors: fetch -> clean -> Kafka, against bare trafilatura.

Serves M RSS feeds, each on its own loopback address (127.0.0.2, 127.0.0.3, ...) so that
page-fetch tasks spread over partitions as different hosts do, with the real news pages
of the extraction benchmark behind their entries. Then runs `newswire ingest --once`
with 1 and 2 fetch-worker processes and measures articles/second into the raw topic.
In the same run, bare `trafilatura.extract` over the same pages in this process is the
ceiling: the connectors do that work plus fetching, page verdicts, WARC archiving and
publishing, so the figure to watch is the rate per worker process against the ceiling.

Politeness is set to 0 s per host here (the loopback server is ours): with the default
1 request per host per second the benchmark would measure the politeness budget.

    python -m bench.ingest_throughput [--feeds 8] [--entries 25] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import trafilatura

from newswire.settings import KafkaSettings
from newswire.tail import records_to_end
from newswire.testing.deployment import newswire_environment, private_broker, run_topics
from newswire.testing.http_server import LoopbackServer, Reply
from newswire.topics import ensure_topics

REPO = Path(__file__).resolve().parents[1]


def load_pages(data: Path) -> list[bytes]:
    return [gzip.decompress(p.read_bytes()) for p in sorted((data / "extraction-benchmark" / "html").glob("*.html.gz"))]


def rss(origin: str, feed: int, entries: int) -> bytes:
    published = datetime(2026, 11, 1, tzinfo=UTC)
    items = "".join(
        f"<item><title>Story {feed}-{n}</title><link>{origin}/story/{feed}/{n}</link>"
        f"<guid>{origin}/story/{feed}/{n}</guid>"
        f"<pubDate>{format_datetime(published + timedelta(minutes=n))}</pubDate></item>"
        for n in range(entries)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(origin)}</title>'
        f"<link>{origin}/</link><description>bench</description>{items}</channel></rss>"
    ).encode()


def record_times(bootstrap: str, topic: str) -> list[float]:
    """Produce timestamps (seconds) of every record of ``topic``."""
    return sorted(m.timestamp / 1000 for m in records_to_end(KafkaSettings(bootstrap_servers=bootstrap), topic))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=8)
    parser.add_argument("--entries", type=int, default=25, help="entries (pages) per feed")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    pages = load_pages(args.data)
    total_pages = args.feeds * args.entries
    work = Path(tempfile.mkdtemp(prefix="newswire-ingest-bench-"))

    started = time.perf_counter()
    for number in range(total_pages):
        trafilatura.extract(pages[number % len(pages)].decode("utf-8", "replace"))
    ceiling = total_pages / (time.perf_counter() - started)

    broker = private_broker(work)
    info = broker.start()
    servers = [LoopbackServer(host=f"127.0.0.{feed + 2}").start() for feed in range(args.feeds)]
    rows = []
    try:
        sources = ["sources:"]
        for feed, server in enumerate(servers):
            server.route(
                "/feed.xml", Reply(200, {"Content-Type": "application/rss+xml"}, rss(server.origin, feed, args.entries))
            )
            for n in range(args.entries):
                page = pages[(feed * args.entries + n) % len(pages)]
                server.route(f"/story/{feed}/{n}", Reply(200, {"Content-Type": "text/html; charset=utf-8"}, page))
            sources += [f"  - name: bench-{feed}", "    type: feed", f"    url: {server.url('/feed.xml')}"]
        sources_file = work / "sources.yaml"
        sources_file.write_text("\n".join(sources) + "\n")

        for workers in args.workers:
            run_id = uuid.uuid4().hex[:6]
            topics = run_topics(f"ib.{run_id}", partitions=6)
            ensure_topics(KafkaSettings(bootstrap_servers=info.bootstrap), topics)
            env = newswire_environment(
                info.bootstrap,
                topics,
                {
                    "NEWSWIRE_FETCH__ALLOW_ADDRESSES": '["127.0.0.0/8"]',
                    "NEWSWIRE_FETCH__PER_HOST_INTERVAL_S": "0",
                    "NEWSWIRE_INGEST__STATE_FILE": str(work / run_id / "state.sqlite3"),
                    "NEWSWIRE_INGEST__ARCHIVE_DIR": str(work / run_id / "warc"),
                    "NEWSWIRE_INGEST__FETCH_GROUP": f"bench-{run_id}",
                    "NEWSWIRE_OBSERVABILITY__LOG_LEVEL": "WARNING",
                },
            )
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "newswire.cli",
                    "ingest",
                    "--once",
                    "--workers",
                    str(workers),
                    "--sources",
                    str(sources_file),
                ],
                cwd=REPO,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            elapsed = time.perf_counter() - started
            published = record_times(info.bootstrap, topics.raw)
            dead = len(record_times(info.bootstrap, topics.dead_letter))
            rows.append((workers, elapsed, published, dead))
    finally:
        for server in servers:
            server.stop()
        broker.stop()

    print(f"\n{args.feeds} feeds x {args.entries} pages = {total_pages} pages; {os.cpu_count()} cores")
    print(f"bare trafilatura.extract (ceiling, 1 core): {ceiling:.1f} pages/s")
    print("end to end = process start to exit; steady = first to last article published (no start-up)")
    header = ("fetch workers", "seconds", "articles", "dead", "e2e art/s", "steady art/s", "steady/worker/ceiling")
    print("{:>13} {:>8} {:>9} {:>5} {:>10} {:>13} {:>22}".format(*header))
    for workers, elapsed, published, dead in rows:
        steady = (len(published) - 1) / (published[-1] - published[0]) if len(published) > 1 else 0.0
        print(
            f"{workers:13d} {elapsed:8.1f} {len(published):9d} {dead:5d} {len(published) / elapsed:10.1f}"
            f" {steady:13.1f} {steady / workers / ceiling:22.2f}"
        )


if __name__ == "__main__":
    main()
