"""No record fails a batch: a record a sink refuses is dead-lettered, the rest of its batch lands.

On the real broker and a real PostgreSQL server; the service runs as it does in production
(``MicroBatchService`` from the settings), in a thread of the test.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import sqlite3
import string
import threading
import time
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from kafka import TopicPartition

from newswire import wiring
from newswire.tail import records_to_end
from newswire.testing.postgres import PostgresServer
from newswire.topics import client_config
from pipeline.graph import build_pipeline
from pipeline.kafka_io import KafkaRecord
from pipeline.microbatch import BatchReport, MicroBatchService
from schemas import CleanedArticle, encode
from tests.integration.pipeline_service import HealthLog, articles, dead_letters, publish, running_service, settings_for

pytestmark = pytest.mark.integration


def _rows(database: PostgresServer) -> list[str]:
    with database.connect() as db:
        try:
            return sorted(row[0] for row in db.execute("SELECT article_id FROM articles"))
        except Exception:  # table not created yet
            return []


def _wait_for(condition: Any, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_an_article_postgres_refuses_is_dead_lettered_and_the_rest_of_its_batch_lands(
    kafka_broker: Any, topics: Any, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database = postgres_server.database()
    *good, other = articles(6)
    # A valid article id whose primary-key entry is over PostgreSQL's B-tree limit (2704
    # bytes; random letters do not compress under it): PostgreSQL refuses the row, while
    # Kafka, SQLite and every other stage take it.
    letters = "".join(random.Random(3).choices(string.ascii_lowercase, k=4000))
    refused = other.model_copy(update={"article_id": f"{letters}-x"})
    batch: list[CleanedArticle] = [*good[:2], refused, *good[2:]]
    publish(kafka_broker.bootstrap, topics.raw, batch)
    settings = settings_for(kafka_broker.settings, topics, tmp_path, sinks=("sqlite", "postgres"), database=database)

    with running_service(settings) as running:
        _wait_for(lambda: len(_rows(database)) == len(good), timeout_s=60, what="the good articles in PostgreSQL")
        _wait_for(
            lambda: dead_letters(kafka_broker.bootstrap, topics.dead_letter), timeout_s=30, what="the dead letter"
        )
        assert running.thread.is_alive() and not running.errors, f"the service exited: {running.errors}"

    assert _rows(database) == sorted(a.article_id for a in good)
    (dead,) = dead_letters(kafka_broker.bootstrap, topics.dead_letter)
    assert (dead.stage, dead.error_type) == ("sink:postgres", "write_refused")
    assert "index row" in dead.error and "ProgramLimitExceeded" in dead.error
    assert (dead.topic, dead.partition, dead.offset) == (topics.raw, 0, 2), "the raw record's coordinates"
    assert dead.key == refused.article_id
    assert dead.original is not None and CleanedArticle.model_validate_json(dead.original) == refused
    # Only PostgreSQL refused it: the other sink holds the whole batch.
    assert sum(report.records for report in running.reports) == len(batch)


class _BreaksOnMarker(beam.PTransform):  # type: ignore[misc]
    """The real source, then a stage that fails its whole bundle on one record: what no
    per-element handling catches (a bug in a stage, a worker that dies on that record)."""

    def __init__(self, source: beam.PTransform, marker: bytes) -> None:
        super().__init__()
        self._source = source
        self._marker = marker

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return pbegin | self._source | beam.Map(_explode_on, self._marker)


def _explode_on(record: KafkaRecord, marker: bytes) -> KafkaRecord:
    if marker in (record.value or b""):
        raise RuntimeError(f"this stage cannot take {record.topic}/{record.partition}/{record.offset}")
    return record


def test_a_batch_that_keeps_failing_is_bisected_and_only_its_culprit_dead_lettered(
    kafka_broker: Any, topics: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = articles(6)
    culprit = 3
    marker = batch[culprit].article_id.encode()
    publish(kafka_broker.bootstrap, topics.raw, batch)
    settings = settings_for(kafka_broker.settings, topics, tmp_path, sinks=("sqlite",))
    reports: list[BatchReport] = []
    service = MicroBatchService(
        consumer_config=client_config(settings.kafka),
        raw_topic=topics.raw,
        consumer_group=settings.pipeline.consumer_group,
        config=wiring.pipeline_config(settings),
        beam_args=wiring.beam_args(settings, wiring.JobServers()),  # the local runner starts no job server
        max_batch_records=100,
        interval_s=0.1,
        on_batch=reports.append,
        retry=wiring.retry_policy(settings),
        graph=lambda pipeline, source, config: build_pipeline(pipeline, _BreaksOnMarker(source, marker), config),
    )
    caplog.set_level(logging.WARNING, logger="pipeline.microbatch")
    try:
        service.run(until_caught_up=True, stop=threading.Event())
        committed = service.committed_offsets()
    finally:
        service.close()

    assert committed[TopicPartition(topics.raw, 0)] == len(batch), "the whole range is committed"
    (dead,) = dead_letters(kafka_broker.bootstrap, topics.dead_letter)
    assert (dead.stage, dead.error_type) == ("batch", "poison")
    assert (dead.topic, dead.partition, dead.offset, dead.key) == (topics.raw, 0, culprit, batch[culprit].article_id)
    assert dead.original == encode(batch[culprit]) and f"cannot take {topics.raw}/0/{culprit}" in dead.error
    with sqlite3.connect(tmp_path / "output" / "articles.sqlite3") as db:
        written = sorted(row[0] for row in db.execute("SELECT article_id FROM articles"))
    assert written == sorted(a.article_id for i, a in enumerate(batch) if i != culprit)
    # Retried as a whole (2 attempts), then only ranges around the culprit ran again.
    retries = [r for r in caplog.records if r.getMessage() == "batch failed; retrying it"]
    assert len(retries) == settings.recovery.batch_attempts - 1
    assert sum(r.counters.get("dead_letter.batch.poison", 0) for r in reports) == 1
    assert sorted((p.start, p.stop) for r in reports for p in r.ranges) == [(0, 3), (3, 4), (4, 6)]


def _always_breaks(record: KafkaRecord) -> KafkaRecord:
    raise RuntimeError("the stage's model file is missing")


def test_a_pipeline_that_fails_every_record_alike_dead_letters_none_and_says_not_ready(
    kafka_broker: Any, topics: Any, tmp_path: Path
) -> None:
    publish(kafka_broker.bootstrap, topics.raw, articles(4))
    settings = settings_for(kafka_broker.settings, topics, tmp_path, sinks=("sqlite",))
    health = HealthLog()
    service = MicroBatchService(
        consumer_config=client_config(settings.kafka),
        raw_topic=topics.raw,
        consumer_group=settings.pipeline.consumer_group,
        config=wiring.pipeline_config(settings),
        beam_args=wiring.beam_args(settings, wiring.JobServers()),
        max_batch_records=100,
        interval_s=0.1,
        retry=wiring.retry_policy(settings),
        health=health,
        # A deployment fault, not a record's: every record fails alone with the same error.
        graph=lambda pipeline, source, config: build_pipeline(
            pipeline, _Then(source, beam.Map(_always_breaks)), config
        ),
    )
    stop = threading.Event()
    thread = threading.Thread(target=service.run, kwargs={"until_caught_up": False, "stop": stop}, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: health.states("pipeline") == [False], timeout_s=90, what="the pipeline's not-ready")
        assert thread.is_alive()
        committed = service.committed_offsets()[TopicPartition(topics.raw, 0)]
    finally:
        stop.set()
        thread.join(timeout=120)
        service.close()
    assert committed == 0, "nothing is skipped"
    assert not dead_letters(kafka_broker.bootstrap, topics.dead_letter), "no record is blamed"
    (detail,) = [d for check, ok, d in health.calls if check == "pipeline"]
    assert "the stage's model file is missing" in detail


class _Then(beam.PTransform):  # type: ignore[misc]
    def __init__(self, source: beam.PTransform, stage: beam.PTransform) -> None:
        super().__init__()
        self._source, self._stage = source, stage

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return pbegin | self._source | self._stage


def test_an_article_the_broker_refuses_as_too_large_is_dead_lettered_and_the_rest_published(
    kafka_broker: Any, topics: Any, tmp_path: Path
) -> None:
    *small, other = articles(4)
    # Under pipeline.max_record_bytes, so decode takes it, but over what the producer may
    # send to the enriched topic: the 1.26 MB article, at a test's scale.
    large = other.model_copy(update={"body": other.body + "\n\n" + " ".join(f"word{i}" for i in range(12_000))})
    publish(kafka_broker.bootstrap, topics.raw, [small[0], large, *small[1:]])
    settings = settings_for(kafka_broker.settings, topics, tmp_path, sinks=("sqlite",))
    config = wiring.pipeline_config(settings)
    config = dataclasses.replace(
        config, producer_config={**config.producer_config, "max_request_size": 100_000}, dead_letter_original_bytes=4096
    )
    service = MicroBatchService(
        consumer_config=client_config(settings.kafka),
        raw_topic=topics.raw,
        consumer_group=settings.pipeline.consumer_group,
        config=config,
        beam_args=wiring.beam_args(settings, wiring.JobServers()),  # the local runner starts no job server
        max_batch_records=100,
        interval_s=0.1,
        retry=wiring.retry_policy(settings),
    )
    try:
        reports = service.run(until_caught_up=True, stop=threading.Event())
    finally:
        service.close()

    assert len(encode(large)) > 100_000
    assert [r.records for r in reports] == [4], "one batch, not failed and re-run"
    (dead,) = dead_letters(kafka_broker.bootstrap, topics.dead_letter)
    assert (dead.stage, dead.error_type, dead.key) == ("kafka:enriched", "write_refused", large.article_id)
    assert "MessageSizeTooLargeError" in dead.error
    assert (dead.topic, dead.partition, dead.offset) == (topics.raw, 0, 1)
    assert dead.original_truncated and dead.original_size == len(encode(large))
    published = {m.key for m in records_to_end(settings.kafka, topics.enriched)}
    assert published == {a.article_id.encode() for a in small}
