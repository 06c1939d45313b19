"""The local broker tooling against a real Kafka: lifecycle, topics, one record through it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.structs import OffsetAndMetadata

from newswire.broker import LocalBroker, ToolchainError, find_java, find_maven, java_major_version
from newswire.settings import BrokerSettings, TopicSettings
from newswire.topics import admin_client, client_config, ensure_topics, topic_offsets
from schemas.kafka_clients import METADATA_REFRESH_SPACING_MS, prompt_metadata, range_reader

if TYPE_CHECKING:
    from tests.conftest import KafkaBroker


def _process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() if Path("/proc").exists() else _signal_zero(pid)


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.integration
def test_starting_a_running_broker_again_returns_it(kafka_broker: KafkaBroker) -> None:
    settings = kafka_broker.settings
    again = LocalBroker(settings.broker, settings.topics).start()  # as a second `newswire broker start` would
    assert again == kafka_broker.info


@pytest.mark.integration
def test_status_says_where_the_broker_runs_and_logs(kafka_broker: KafkaBroker) -> None:
    status = LocalBroker(kafka_broker.settings.broker, kafka_broker.settings.topics).status()
    assert status.running
    assert (status.pid, status.bootstrap) == (kafka_broker.info.pid, kafka_broker.bootstrap)
    assert status.log_path == kafka_broker.settings.broker.home / "logs" / "broker.log"
    assert "Kafka Server started" in status.log_path.read_text(encoding="utf-8")
    assert str(status.log_path) in status.describe()


@pytest.mark.integration
def test_topics_are_created_once_with_the_configured_partitions_and_configs(
    kafka_broker: KafkaBroker, topics: TopicSettings
) -> None:
    kafka = kafka_broker.settings.kafka
    names = ensure_topics(kafka, topics)  # the fixture created them already
    assert names == list(topics.names)
    for name in names:
        assert topic_offsets(kafka, name) == dict.fromkeys(range(topics.partitions), 0)
    with admin_client(kafka) as admin:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topics.raw)])
    configs = {key: entry["value"] for key, entry in described["topic"][topics.raw].items()}
    assert configs["retention.ms"] == str(topics.retention_ms)
    assert configs["compression.type"] == topics.compression_type


@pytest.mark.integration
def test_one_record_goes_through_the_broker_and_its_offset_commits(
    kafka_broker: KafkaBroker, topics: TopicSettings
) -> None:
    kafka = kafka_broker.settings.kafka
    producer = KafkaProducer(**client_config(kafka))
    try:
        sent = producer.send(topics.raw, key=b"article-1", value=b'{"title": "hello"}').get(timeout=30)
    finally:
        producer.close()
    assert topic_offsets(kafka, topics.raw)[sent.partition] == sent.offset + 1

    consumer = KafkaConsumer(**client_config(kafka), group_id=f"test-{uuid.uuid4().hex[:8]}", enable_auto_commit=False)
    try:
        partition = TopicPartition(topics.raw, sent.partition)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        records = [record for batch in consumer.poll(timeout_ms=10_000).values() for record in batch]
        assert [(r.key, r.value, r.offset) for r in records] == [(b"article-1", b'{"title": "hello"}', sent.offset)]
        consumer.commit({partition: OffsetAndMetadata(sent.offset + 1, "", -1)})
        assert consumer.committed(partition) == sent.offset + 1
    finally:
        consumer.close()


@pytest.mark.integration
def test_new_clients_refresh_metadata_promptly_and_still_deliver(
    kafka_broker: KafkaBroker, topics: TopicSettings
) -> None:
    # kafka-python 3.0 spaces its metadata refreshes by 100 ms of its own, whatever the client's
    # settings; prompt_metadata reaches where it keeps them. Should an upgrade move them, this fails
    # and every micro-batch would quietly wait the 100 ms again on each new client.
    kafka = kafka_broker.settings.kafka
    producer = prompt_metadata(KafkaProducer(**client_config(kafka)))
    consumer = range_reader(client_config(kafka))
    try:
        assert producer._metadata.config["retry_backoff_ms"] == METADATA_REFRESH_SPACING_MS
        assert consumer._cluster.config["retry_backoff_ms"] == METADATA_REFRESH_SPACING_MS
        sent = producer.send(topics.raw, key=b"prompt", value=b"{}").get(timeout=30)
        partition = TopicPartition(topics.raw, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        records = [r for batch in consumer.poll(timeout_ms=10_000).values() for r in batch]
        assert [(r.key, r.offset) for r in records] == [(b"prompt", sent.offset)]
    finally:
        producer.close()
        consumer.close()


@pytest.mark.integration
def test_a_stopped_broker_reports_stopped_and_restarts_on_its_formatted_storage(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    # A broker of its own, so the session's broker keeps serving the other tests.
    settings = kafka_broker.settings.broker.model_copy(update={"home": tmp_path, "port": 0, "controller_port": 0})
    broker = LocalBroker(settings, TopicSettings())
    first = broker.start()
    meta = (tmp_path / "data" / "meta.properties").read_text(encoding="utf-8")
    try:
        assert broker.stop() is True
        status = broker.status()
        assert not status.running and status.pid is None
        assert not _process_exists(first.pid)
        assert broker.stop() is False

        second = LocalBroker(settings, TopicSettings()).start()
        assert second.pid != first.pid
        assert (tmp_path / "data" / "meta.properties").read_text(encoding="utf-8") == meta, "formatted only once"
    finally:
        broker.stop()
    assert not broker.status().running


def test_missing_java_or_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = str(tmp_path)
    with pytest.raises(ToolchainError, match=r"needs Java 17 or newer, but `java` is not on PATH"):
        find_java(path=empty)
    with pytest.raises(ToolchainError, match=r"`mvn` is not on PATH; install it"):
        find_maven(path=empty)

    # A fresh checkout: no jars cached yet, so starting needs Maven first.
    monkeypatch.setenv("PATH", empty)
    fresh = LocalBroker(BrokerSettings(home=tmp_path / "home", cache_dir=tmp_path / "cache"), TopicSettings())
    with pytest.raises(ToolchainError, match="mvn"):
        fresh.start()


def test_java_older_than_17_is_refused(tmp_path: Path) -> None:
    old_java = tmp_path / "java"
    old_java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n", encoding="utf-8")
    old_java.chmod(0o755)
    with pytest.raises(ToolchainError, match=r"is Java 11; install JDK 17\+"):
        find_java(path=str(tmp_path))
    assert java_major_version('java version "1.8.0_402"') == 8
    assert java_major_version('openjdk version "21" 2023-09-19') == 21
