"""Kafka client settings and topic administration for the shell.

``client_config`` is the one place where ``KafkaSettings`` become kafka-python keyword
arguments; every producer, consumer and admin client of newswire starts from it.
``ensure_topics`` creates the raw, enriched, duplicates and dead-letter topics;
``topic_offsets`` and ``describe_topics`` report end offsets and a consumer group's lag.

This module must never delete, shrink or reconfigure a topic that already exists: an
existing topic is left exactly as its owner configured it.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from newswire.settings import KafkaSettings, TopicSettings
from schemas.client_config import ClientConfig

# A record batch carries a header and per-record framing on top of the record itself, so a
# topic must accept a little more than the largest record the producer may send.
BATCH_OVERHEAD_BYTES = 64 * 1024


class TopicError(Exception):
    """Kafka could not be reached or refused a topic operation; the message says what to change."""


def client_config(kafka: KafkaSettings) -> ClientConfig:
    """kafka-python keyword arguments shared by producers, consumers and admin clients.

    Frozen, with the SASL password masked in ``repr``: it travels in component configs and
    DoFn state, which get logged and pickled.
    """
    config: dict[str, Any] = {
        "bootstrap_servers": [server.strip() for server in kafka.bootstrap_servers.split(",") if server.strip()],
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
    }
    if kafka.sasl_mechanism is not None:
        config["sasl_mechanism"] = kafka.sasl_mechanism
        config["sasl_plain_username"] = kafka.sasl_username
        config["sasl_plain_password"] = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
    return ClientConfig(config)


def admin_client(kafka: KafkaSettings, *, bootstrap_timeout_ms: int | None = None) -> KafkaAdminClient:
    """An admin client that has already fetched cluster metadata; the caller closes it."""
    timeout_ms = bootstrap_timeout_ms or kafka.request_timeout_ms
    try:
        return KafkaAdminClient(**client_config(kafka), bootstrap_timeout_ms=timeout_ms)
    except KafkaError as error:
        raise TopicError(
            f"no Kafka broker answered at {kafka.bootstrap_servers} within {timeout_ms} ms ({error!r}); "
            "start the local one with `newswire broker start`, or fix kafka.bootstrap_servers"
        ) from error


def topic_configs(kafka: KafkaSettings, topics: TopicSettings) -> dict[str, str]:
    """Topic-level configs, so the topics behave the same on any cluster whatever its defaults."""
    return {
        "retention.ms": str(topics.retention_ms),
        "compression.type": topics.compression_type,
        "max.message.bytes": str(kafka.max_message_bytes + BATCH_OVERHEAD_BYTES),
    }


def ensure_topics(kafka: KafkaSettings, topics: TopicSettings) -> list[str]:
    """Create newswire's topics (``TopicSettings.names``) unless they exist; return their names.

    Returns only once every topic has a leader for every partition, so producers may
    write to them straight away.
    """
    names = list(topics.names)
    spec = {
        "num_partitions": topics.partitions,
        "replication_factor": topics.replication_factor,
        "configs": topic_configs(kafka, topics),
    }
    with admin_client(kafka) as admin:
        response = admin.create_topics({name: spec for name in names}, raise_errors=False)
        refused: dict[str, list[str]] = {}
        for result in response["topics"]:
            if result["error_code"] not in (0, TopicAlreadyExistsError.errno):
                reason = f"{for_code(result['error_code']).__name__}: {result.get('error_message') or ''}".strip()
                refused.setdefault(reason, []).append(result["name"])
        if refused:
            reasons = "; ".join(f"{', '.join(failed)}: {reason}" for reason, failed in refused.items())
            raise TopicError(
                f"Kafka at {kafka.bootstrap_servers} refused to create topics ({reasons}); check "
                f"topics.partitions={topics.partitions} and topics.replication_factor={topics.replication_factor} "
                "(at most the number of brokers) and the client's permissions"
            )
        try:
            admin.wait_for_topics(names, timeout_ms=kafka.request_timeout_ms)
        except KafkaError as error:
            raise TopicError(
                f"topics were created but have no leader yet at {kafka.bootstrap_servers}: {error}"
            ) from error
    return names


def topic_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """End offset (the offset the next record will get) of every partition of ``topic``."""
    with admin_client(kafka) as admin:
        return _end_offsets(admin, topic, kafka.bootstrap_servers)


def describe_topics(kafka: KafkaSettings, topics: TopicSettings, *, consumer_group: str) -> list[str]:
    """One line per topic: partitions, end offsets and, for the raw topic, ``consumer_group``'s lag."""
    lines = []
    with admin_client(kafka) as admin:
        committed = _committed_offsets(admin, consumer_group, timeout_s=kafka.request_timeout_ms / 1000)
        for name in topics.names:
            try:
                ends = _end_offsets(admin, name, kafka.bootstrap_servers)
            except TopicError:
                lines.append(f"{name}: missing (create it with `newswire topics create`)")
                continue
            line = f"{name}: {len(ends)} partition(s), end offsets {sum(ends.values())}"
            if name == topics.raw:
                lag = sum(end - committed.get(TopicPartition(name, p), 0) for p, end in ends.items())
                line += f", lag of consumer group {consumer_group!r} {lag}"
            lines.append(line)
    return lines


def _committed_offsets(admin: KafkaAdminClient, group: str, *, timeout_s: float) -> dict[TopicPartition, int]:
    # The first lookup of any group makes Kafka create its offsets topic; until that has a
    # leader the coordinator is "not available", a retriable error.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = admin.list_group_offsets({group: None}).get(group, {})
        except KafkaError as error:
            if not error.retriable or time.monotonic() > deadline:
                raise TopicError(f"cannot read the committed offsets of consumer group {group!r}: {error}") from error
            time.sleep(0.5)
            continue
        return {tp: committed.offset for tp, committed in found.items() if committed.offset >= 0}


def _end_offsets(admin: KafkaAdminClient, topic: str, bootstrap: str) -> dict[int, int]:
    [described] = admin.describe_topics([topic])
    if described["error_code"] != 0:
        raise TopicError(
            f"topic {topic!r} is not available at {bootstrap} ({for_code(described['error_code']).__name__}); "
            "create it with `newswire topics create`"
        )
    specs = {TopicPartition(topic, p["partition_index"]): OffsetSpec.LATEST for p in described["partitions"]}
    return {tp.partition: found.offset for tp, found in admin.list_partition_offsets(specs).items()}
