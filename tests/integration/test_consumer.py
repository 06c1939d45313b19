"""The downstream view: the typed consumer and the example consumer, on the real broker."""

from __future__ import annotations

import sys
import threading
import time

import pytest
from kafka import KafkaProducer

from schemas import CleanedArticle, encode
from schemas.consumer import RecordConsumer, Undecodable
from tests.integration.harness import REPO, NewswireRun

pytestmark = pytest.mark.integration


def test_example_consumer_alerts_on_the_seed_within_seconds_of_replay(newswire_run: NewswireRun) -> None:
    import subprocess

    pipeline = newswire_run.start("pipeline")
    alert = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "examples.keyword_alert",
            "Sudani",
            "--bootstrap",
            newswire_run.bootstrap,
            "--topic",
            newswire_run.topics.enriched,
        ],
        cwd=REPO,
        env=newswire_run.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)  # both running before the replay starts
        replayed_at = time.monotonic()
        newswire_run.command("replay", str(REPO / "seeds"), "--no-progress")
        assert alert.stdout is not None
        line = alert.stdout.readline()  # blocks until the first alert
        latency = time.monotonic() - replayed_at
        assert line.startswith("ALERT 'Sudani'") and "seed-0a8afec63f5aff32" in line, line
        assert latency < 30, f"alert came {latency:.1f}s after replay"
    finally:
        for process in (alert, pipeline):
            process.terminate()
            process.wait(timeout=60)


def test_record_consumer_yields_models_routes_bad_records_and_commits_after_handling(newswire_run: NewswireRun) -> None:
    topic = newswire_run.topics.raw
    producer = KafkaProducer(bootstrap_servers=newswire_run.bootstrap)
    article = CleanedArticle.model_validate_json(
        '{"article_id": "seed-c1", "title": "T", "body": "B", "fetched_at": "2026-01-01T00:00:00Z",'
        ' "source": {"kind": "seed", "name": "x"}}'
    )
    for value in (encode(article), b"not json", encode(article.model_copy(update={"article_id": "seed-c2"}))):
        producer.send(topic, value=value, partition=0)
    producer.flush()
    producer.close()

    def consume(handled: list[str], bad: list[Undecodable], expected: int) -> None:
        stop = threading.Event()

        def handle(record: CleanedArticle) -> None:
            handled.append(record.article_id)
            if len(handled) + len(bad) >= expected:
                stop.set()

        def on_bad(record: Undecodable) -> None:
            bad.append(record)

        with RecordConsumer(
            topic,
            CleanedArticle,
            group_id="consumer-test",
            bootstrap_servers=newswire_run.bootstrap,
            on_undecodable=on_bad,
        ) as consumer:
            threading.Timer(60, stop.set).start()
            consumer.run(handle, stop=stop)

    handled: list[str] = []
    bad: list[Undecodable] = []
    consume(handled, bad, expected=3)
    assert handled == ["seed-c1", "seed-c2"]
    assert [(b.offset, b.error.split(":")[0]) for b in bad] == [(1, "record is not valid JSON")]
    # Everything handled was committed: the same group starts after it.
    producer = KafkaProducer(bootstrap_servers=newswire_run.bootstrap)
    producer.send(topic, value=encode(article.model_copy(update={"article_id": "seed-c3"})), partition=0)
    producer.flush()
    producer.close()
    again: list[str] = []
    consume(again, [], expected=1)
    assert again == ["seed-c3"]
