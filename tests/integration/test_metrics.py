"""Metrics against what is really on the topics: a pipeline batch's counters, and the ingest
service's per-source counts with two fetch-worker processes."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaProducer

from newswire.console.readers import Scrape, parse_metrics
from newswire.testing.corpus import write_generated_seeds
from schemas import DeadLetter, DuplicateNotice, decode
from tests.integration.harness import NewswireRun

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return parse_metrics(response.read().decode(), time.time())


def wait_for(port: int, process, done, *, timeout_s: float) -> Scrape:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, "the service exited early"
        try:
            found = scrape(port)
        except OSError:
            found = None
        if found is not None and done(found):
            return found
        assert time.monotonic() < deadline, f"metrics never got there; last scrape: {found and dict(found.values)}"
        time.sleep(0.3)


def readyz(port: int) -> dict:  # type: ignore[type-arg]
    import json
    import urllib.error

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:  # 503: not ready, and the document says why
        return dict(json.loads(error.read()))


def by_label(found: Scrape, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    totals: dict[tuple[str, ...], float] = {}
    for label_set, value in found.series(name).items():
        as_dict = dict(label_set)
        key = tuple(as_dict[label] for label in labels)
        totals[key] = totals.get(key, 0.0) + value
    return {k: v for k, v in totals.items() if v}


def test_a_batch_counts_what_it_wrote_to_each_topic(newswire_run: NewswireRun, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    paths = write_generated_seeds(seeds, 6)
    # Exact copies under other names: duplicates decided inside the batch, not by the index.
    for number, path in enumerate(paths[:3]):
        (seeds / f"9{number:05d}_copy.txt").write_text(path.read_text())
    newswire_run.command("replay", str(seeds), "--no-progress")
    newswire_run.command("replay", str(seeds), "--no-progress")  # the same ids again: id-layer duplicates
    producer = KafkaProducer(bootstrap_servers=newswire_run.bootstrap)
    for poison in (b"not json at all", b'{"title": "no body"}'):
        producer.send(newswire_run.topics.raw, key=b"poison", value=poison)
    producer.flush()
    producer.close()
    raw = len(newswire_run.topic_values(newswire_run.topics.raw))

    port = free_port()
    newswire_run.env["NEWSWIRE_OBSERVABILITY__METRICS_PORT"] = str(port)
    pipeline = newswire_run.start("pipeline", log=tmp_path / "pipeline.log")
    try:
        found = wait_for(port, pipeline, lambda s: s.total("newswire_records_consumed_total") >= raw, timeout_s=120)
        assert found.total("newswire_batches_total") >= 1
        # The lag is measured again as soon as a batch commits.
        lag = wait_for(port, pipeline, lambda s: s.series("newswire_consumer_lag_records"), timeout_s=10)
        lag = wait_for(port, pipeline, lambda s: s.total("newswire_consumer_lag_records") == 0, timeout_s=10)
        ready = readyz(port)
        assert ready["ready"] is True, ready
        assert set(ready["checks"]) == {"broker", "sink:sqlite", "sink:jsonl", "index"}
    finally:
        pipeline.terminate()
        pipeline.wait(timeout=60)

    enriched = newswire_run.topic_values(newswire_run.topics.enriched)
    notices = [decode(v, DuplicateNotice) for _, v in newswire_run.topic_values(newswire_run.topics.duplicates)]
    dead = [decode(v, DeadLetter) for _, v in newswire_run.topic_values(newswire_run.topics.dead_letter)]
    assert found.total("newswire_records_consumed_total") == raw
    stages = by_label(found, "newswire_stage_records_total", "stage", "direction")
    assert stages[("decode", "in")] == raw
    assert stages[("decode", "out")] == stages[("dedup", "in")] == raw - 2
    # Only the originals are enriched: dedup comes first.
    assert stages[("dedup", "out")] == stages[("enrich", "in")] == stages[("enrich", "out")] == len(enriched)
    assert by_label(found, "newswire_topic_records_written_total", "topic") == {
        (newswire_run.topics.enriched,): len(enriched),
        (newswire_run.topics.duplicates,): len(notices),
        (newswire_run.topics.dead_letter,): len(dead),
    }
    assert found.total("newswire_dedup_originals_total") == len(enriched) > 0
    arrivals = Counter((n.layer.value,) for n in notices if not n.was_original)
    assert by_label(found, "newswire_dedup_duplicates_total", "layer") == arrivals
    assert sum(arrivals.values()) == raw - 2 - len(enriched)  # every record but the poison and the originals
    assert len(arrivals) >= 2  # the id layer and the content layer at least
    assert by_label(found, "newswire_dead_letters_total", "stage", "error_type") == Counter(
        (d.stage, d.error_type) for d in dead
    )
    assert len(dead) == 2
    sink_records = by_label(found, "newswire_sink_records_total", "sink", "action")
    assert sink_records[("sqlite", "written")] == sink_records[("jsonl", "written")] == len(enriched)
    assert found.total("newswire_sink_writes_total") >= 2
    assert found.total("newswire_dedup_index_bytes") > 0
    assert len(lag.series("newswire_consumer_lag_records")) == newswire_run.topics.partitions


def test_two_fetch_worker_processes_count_what_they_published(newswire_run: NewswireRun, tmp_path: Path) -> None:
    """Two publishers on two loopback hosts whose fetch tasks land on partitions 1 and 2 of the
    fetch-task topic: whichever way the group assigns them, each worker process fetches one,
    and its events reach the ingest process's endpoint."""
    from newswire.testing.http_server import LoopbackServer
    from newswire.testing.publisher import LoopbackPublisher, Template
    from schemas import CleanedArticle

    state = tmp_path / "state"
    port = free_port()
    newswire_run.env.update(
        {
            "NEWSWIRE_FETCH__ALLOW_ADDRESSES": '["127.0.0.0/8"]',
            "NEWSWIRE_FETCH__PER_HOST_INTERVAL_S": "0.02",
            "NEWSWIRE_INGEST__STATE_FILE": str(state / "connectors.sqlite3"),
            "NEWSWIRE_INGEST__ARCHIVE_DIR": str(tmp_path / "archive"),
            "NEWSWIRE_INGEST__FETCH_GROUP": f"fetchers-{tmp_path.name}",
            "NEWSWIRE_OBSERVABILITY__INGEST_METRICS_PORT": str(port),
        }
    )
    with LoopbackServer("127.0.0.1") as first_host, LoopbackServer("127.0.0.2") as second_host:
        first = LoopbackPublisher(first_host, "first-news")
        first.publish(5)
        # The feeds answer late: by then both workers have joined the group and split its partitions.
        first.publish(2, Template.NO_BODY, feed_delay_s=6)
        second = LoopbackPublisher(second_host, "second-news")
        second.publish(3)
        second.publish(1, Template.NO_BODY, feed_delay_s=6)
        sources = tmp_path / "sources.yaml"
        sources.write_text(first.sources_yaml() + second.sources_yaml().removeprefix("sources:\n"))
        ingest = newswire_run.start("ingest", "--workers", "2", "--sources", str(sources), log=tmp_path / "ingest.log")
        try:
            found = wait_for(port, ingest, lambda s: s.total("newswire_page_fetches_total") >= 11, timeout_s=120)
            ready = readyz(port)
            assert ready["ready"] is True and set(ready["checks"]) == {"broker", "state", "archive"}, ready
        finally:
            ingest.terminate()
            ingest.wait(timeout=60)

    articles = [decode(v, CleanedArticle) for _, v in newswire_run.topic_values(newswire_run.topics.raw)]
    dead = [decode(v, DeadLetter) for _, v in newswire_run.topic_values(newswire_run.topics.dead_letter)]
    on_topics = Counter((a.source.name, "ok") for a in articles) + Counter((d.source_name, d.error_type) for d in dead)
    assert by_label(found, "newswire_page_fetches_total", "source", "outcome") == on_topics
    assert on_topics == {
        ("first-news", "ok"): 5,
        ("first-news", "not_an_article"): 2,
        ("second-news", "ok"): 3,
        ("second-news", "not_an_article"): 1,
    }
    assert by_label(found, "newswire_polls_total", "source", "outcome") == {
        ("first-news", "ok"): 1,
        ("second-news", "ok"): 1,
    }
    fetched_bytes = by_label(found, "newswire_fetched_bytes_total", "source")
    assert fetched_bytes[("first-news",)] > 0 and fetched_bytes[("second-news",)] > 0
    assert found.total("newswire_ingest_retries_pending") == 0
