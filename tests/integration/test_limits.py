"""Limits that agree end to end, on the real broker: what fits the raw topic goes through every
stage and write; what does not is refused where it enters, as a dead letter that fits its topic."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from connectors.seeds import split_seed_text
from newswire.settings import BATCH_OVERHEAD_BYTES, LimitSettings, TopicSettings
from newswire.testing.corpus import generated_seed_texts
from newswire.topics import ensure_topics
from schemas import CleanedArticle, DeadLetter, EnrichedArticle, SourceKind, SourceRef, decode, encode
from schemas.timestamps import utc_now
from tests.integration.harness import NewswireRun

pytestmark = pytest.mark.integration
LIMITS = LimitSettings()


def _article(article_id: str, body: str, title: str = "A report") -> CleanedArticle:
    return CleanedArticle(
        article_id=article_id,
        title=title,
        body=body,
        fetched_at=utc_now(),
        source=SourceRef(kind=SourceKind.SEED, name="limits-test"),
    )


def _good(number: int) -> CleanedArticle:
    _, text = list(generated_seed_texts(number + 1, seed=11))[number]
    title, body = split_seed_text(text)
    return _article(f"seed-limits{number}", body, title)


def _long_body(target_bytes: int) -> str:
    """Varied prose (numbered, so that no paragraph repeats) of about ``target_bytes``."""
    paragraphs = []
    size = 0
    for number, (_, text) in enumerate(generated_seed_texts(20_000, seed=5)):
        _, body = split_seed_text(text)
        paragraph = f"Part {number}. " + body.replace("\n\n", " ")
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
        if size >= target_bytes:
            break
    return "\n\n".join(paragraphs)


def test_a_5_mb_record_is_dead_lettered_to_fit_and_the_service_goes_on(newswire_run: NewswireRun) -> None:
    # A misbehaving producer: 5 MB of JSON, gzip-compressed under the raw topic's batch limit.
    huge = encode(_article("seed-huge", "word " * 1_000_000))
    assert len(huge) > 5_000_000
    producer = KafkaProducer(
        bootstrap_servers=newswire_run.bootstrap, compression_type="gzip", max_request_size=8 * 2**20
    )
    raw = newswire_run.topics.raw
    producer.send(raw, key=b"seed-limits0", value=encode(_good(0)), partition=0)
    producer.send(raw, key=b"seed-huge", value=huge, partition=0)
    producer.flush()

    service = newswire_run.start("pipeline")
    try:
        newswire_run.wait_for_sqlite_rows(service, 1, timeout_s=120)
        # Records after the poison, written while the service runs: it must still be alive to take them.
        for number in (1, 2):
            producer.send(raw, key=f"seed-limits{number}".encode(), value=encode(_good(number)), partition=0)
        producer.flush()
        producer.close()
        newswire_run.wait_for_sqlite_rows(service, 3, timeout_s=120)
        assert service.poll() is None, "the service is still running"
    finally:
        service.send_signal(signal.SIGTERM)
        output, _ = service.communicate(timeout=120)
    assert service.returncode == 0, output

    assert sorted(r[0] for r in newswire_run.sqlite_rows()) == ["seed-limits0", "seed-limits1", "seed-limits2"]
    enriched = sorted(k or b"" for k, _ in newswire_run.topic_values(newswire_run.topics.enriched))
    assert enriched == [b"seed-limits0", b"seed-limits1", b"seed-limits2"]
    dead = newswire_run.topic_values(newswire_run.topics.dead_letter)
    assert len(dead) == 1
    key, value = dead[0]
    assert len(value) <= LIMITS.max_dead_letter_bytes, "the dead letter fits its topic"
    letter = decode(value, DeadLetter)
    assert (letter.stage, letter.error_type) == ("decode", "too_large")
    assert f"over limits.max_article_bytes={LIMITS.max_article_bytes}" in letter.error
    assert (letter.topic, letter.partition, letter.offset, letter.key) == (raw, 0, 1, "seed-huge")
    assert letter.original_size == len(huge)
    assert letter.original_sha256 == hashlib.sha256(huge).hexdigest()
    assert letter.original_truncated and letter.original is not None
    assert huge.startswith(letter.original) and 0 < len(letter.original) <= LIMITS.max_dead_letter_original_bytes
    assert letter.dead_letter_id is not None and key == letter.dead_letter_id.encode(), "keyed by its id"


def test_a_1_5_mb_article_reaches_every_sink_and_the_enriched_topic(newswire_run: NewswireRun, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    body = _long_body(1_500_000)
    (seeds / "001_big.txt").write_text("A very long report\n\n" + body + "\n", encoding="utf-8")
    # Under the file limit, but its record is not: every quote doubles when encoded as JSON.
    quoted = '"' * (LIMITS.max_article_bytes - 200_000)
    (seeds / "002_quoted.txt").write_text(f"Quotes\n\n{quoted}\n", encoding="utf-8")
    (seeds / "003_toolarge.txt").write_text("Too long\n\n" + "word " * (LIMITS.max_article_bytes // 5 + 1) + "\n")

    replay = newswire_run.command("replay", str(seeds), "--no-progress")
    assert "replayed 1 article(s), skipped 2" in replay.stdout, replay.stdout + replay.stderr
    newswire_run.command("pipeline", "--until-caught-up")

    [(key, value)] = newswire_run.topic_values(newswire_run.topics.enriched)
    article = decode(value, EnrichedArticle)
    assert key == b"seed-big" and article.body == body and len(value) > 1_500_000
    assert newswire_run.sqlite_rows("SELECT article_id, length(body) FROM articles") == [("seed-big", len(body))]
    assert len(newswire_run.jsonl_lines()) == 1

    letters = [decode(v, DeadLetter) for _, v in newswire_run.topic_values(newswire_run.topics.dead_letter)]
    dead = {d.source_name: d for d in letters}
    assert set(dead) == {"002_quoted.txt", "003_toolarge.txt"}
    refused_at_publish, refused_at_read = dead["002_quoted.txt"], dead["003_toolarge.txt"]
    assert (refused_at_publish.stage, refused_at_publish.error_type) == ("publish", "too_large")
    assert "limits.max_article_bytes" in refused_at_publish.error
    assert refused_at_publish.original_size is not None and refused_at_publish.original_size > LIMITS.max_article_bytes
    assert (refused_at_read.stage, refused_at_read.error_type) == ("replay", "too_large")


def test_topics_create_raises_a_topic_limit_below_the_settings_and_says_so(newswire_run: NewswireRun) -> None:
    admin = KafkaAdminClient(bootstrap_servers=newswire_run.bootstrap)
    try:
        enriched = newswire_run.topics.enriched
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, enriched, {"max.message.bytes": "1048588"})])
        expected = LIMITS.max_enriched_bytes + BATCH_OVERHEAD_BYTES
        # The pipeline says so when it starts, before an article ever meets the smaller limit.
        warned = newswire_run.command("pipeline", "--until-caught-up")
        assert f"topic {enriched} accepts records of at most 1048588 bytes" in warned.stdout + warned.stderr
        assert f"allow {expected}; run `newswire topics create`" in warned.stdout + warned.stderr
        created = newswire_run.command("topics", "create")
        assert f"topic {enriched}: raised max.message.bytes from 1048588 to {expected}" in created.stdout
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, enriched)])["topic"][enriched]
        assert described["max.message.bytes"]["value"] == str(expected)
        # A second run has nothing to raise, and never lowers what an owner set higher.
        assert "raised" not in newswire_run.command("topics", "create").stdout
    finally:
        admin.close()


def test_every_topic_accepts_its_largest_record(kafka_broker: Any, topics: TopicSettings) -> None:
    ensure_topics(kafka_broker.settings.kafka, topics, LIMITS)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        for name, record_bytes in LIMITS.record_bytes(topics).items():
            described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])["topic"][name]
            assert int(described["max.message.bytes"]["value"]) == record_bytes + BATCH_OVERHEAD_BYTES, name
    finally:
        admin.close()


def test_a_fetched_article_too_large_for_the_raw_topic_is_refused_where_it_enters(
    newswire_run: NewswireRun, tmp_path: Path
) -> None:
    from newswire.testing.http_server import LoopbackServer, Reply

    newswire_run.env.update(
        {
            "NEWSWIRE_LIMITS__MAX_ARTICLE_BYTES": "65536",
            "NEWSWIRE_FETCH__ALLOW_ADDRESSES": '["127.0.0.1/32"]',
            "NEWSWIRE_FETCH__PER_HOST_INTERVAL_S": "0.02",
            "NEWSWIRE_INGEST__STATE_FILE": str(tmp_path / "state" / "connectors.sqlite3"),
            "NEWSWIRE_INGEST__ARCHIVE_DIR": str(tmp_path / "archive"),
            "NEWSWIRE_INGEST__FETCH_GROUP": f"fetchers-{tmp_path.name}",
        }
    )
    paragraphs = "".join(f"<p>{paragraph}</p>" for paragraph in _long_body(120_000).split("\n\n"))
    page = f"<html><head><title>A long report</title></head><body><article><h1>A long report</h1>{paragraphs}"
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        url = server.route("/long-report", Reply(200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()))
        sources = tmp_path / "sources.yaml"
        sources.write_text(f"sources:\n  - name: long\n    type: page\n    url: {url}\n")
        ingested = newswire_run.command("ingest", "--once", "--sources", str(sources))
    assert "too_large=1" in ingested.stdout, ingested.stdout + ingested.stderr
    assert newswire_run.topic_values(newswire_run.topics.raw) == []
    [(key, value)] = newswire_run.topic_values(newswire_run.topics.dead_letter)
    letter = decode(value, DeadLetter)
    assert (letter.stage, letter.error_type, letter.source_name) == ("publish", "too_large", "long")
    assert "over limits.max_article_bytes=65536" in letter.error
    assert letter.original_size is not None and letter.original_size > 65536
    assert letter.dead_letter_id is not None and key == letter.dead_letter_id.encode()
