"""Kafka client settings and topic administration for the shell.

``client_config`` is the one place where ``KafkaSettings`` become kafka-python keyword
arguments; every producer, consumer and admin client of newswire starts from it, and
``producer_config``/``consumer_config`` add the sizes ``LimitSettings`` decide.
``ensure_topics`` creates the raw, enriched, duplicates, dead-letter and fetch-task topics,
each accepting its largest record; ``topic_offsets`` and ``describe_topics`` report end
offsets and a consumer group's lag.

This module must never delete, shrink or otherwise reconfigure a topic that already
exists. The one exception is ``max.message.bytes``: an existing topic that would refuse
records newswire's limits allow has it raised, and says so; everything else about it is
left exactly as its owner configured it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, OffsetSpec
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from newswire.settings import BATCH_OVERHEAD_BYTES, KafkaSettings, LimitSettings, TopicSettings
from schemas.client_config import ClientConfig

log = logging.getLogger(__name__)
# kafka-python's own default: one fetch may bring this much over all partitions.
_DEFAULT_FETCH_MAX_BYTES = 50 * 2**20


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


def producer_config(kafka: KafkaSettings, limits: LimitSettings) -> ClientConfig:
    """A producer's arguments: the client's, plus a request size that lets the largest record of any topic
    through (``schemas.producer.DurableProducer`` adds acks=all and idempotence)."""
    config = client_config(kafka).with_options(max_request_size=limits.max_message_bytes)
    if kafka.compression_type != "none":
        config = config.with_options(compression_type=kafka.compression_type)
    return config


def consumer_config(kafka: KafkaSettings, limits: LimitSettings) -> ClientConfig:
    """A consumer's arguments: the client's, plus fetch sizes that hold the largest record of any topic."""
    return client_config(kafka).with_options(
        max_partition_fetch_bytes=limits.max_message_bytes,
        fetch_max_bytes=max(_DEFAULT_FETCH_MAX_BYTES, limits.max_message_bytes),
    )


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


def topic_configs(topics: TopicSettings, limits: LimitSettings) -> dict[str, dict[str, str]]:
    """Topic-level configs of each topic, so they behave the same on any cluster whatever its defaults."""
    return {
        name: {
            "retention.ms": str(topics.retention_ms),
            "compression.type": topics.compression_type,
            "max.message.bytes": str(record_bytes + BATCH_OVERHEAD_BYTES),
        }
        for name, record_bytes in limits.record_bytes(topics).items()
    }


def ensure_topics(
    kafka: KafkaSettings,
    topics: TopicSettings,
    limits: LimitSettings | None = None,
    *,
    report: Callable[[str], None] | None = None,
) -> list[str]:
    """Create newswire's topics (``TopicSettings.names``) unless they exist; return their names.

    An existing topic whose ``max.message.bytes`` is below what ``limits`` allow on it is
    raised to that, and ``report`` (default: the log) is told. Returns only once every
    topic has a leader for every partition, so producers may write to them straight away.
    """
    limits = limits or LimitSettings()
    names = list(topics.names)
    configs = topic_configs(topics, limits)
    specs = {
        name: {
            "num_partitions": topics.partitions,
            "replication_factor": topics.replication_factor,
            "configs": configs[name],
        }
        for name in names
    }
    with admin_client(kafka) as admin:
        response = admin.create_topics(specs, raise_errors=False)
        existing = [r["name"] for r in response["topics"] if r["error_code"] == TopicAlreadyExistsError.errno]
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
        if existing:
            _raise_message_limits(admin, {name: configs[name] for name in existing}, report or log.warning)
    return names


def topics_below_limits(kafka: KafkaSettings, topics: TopicSettings, limits: LimitSettings) -> list[str]:
    """One line per existing topic that would refuse records ``limits`` allow on it (none when all fit)."""
    configs = topic_configs(topics, limits)
    with admin_client(kafka) as admin:
        existing = set(admin.list_topics())
        below = _below_limits(admin, {name: wanted for name, wanted in configs.items() if name in existing})
    return [
        f"topic {name} accepts records of at most {current} bytes (max.message.bytes) but the limits.* settings "
        f"allow {wanted}; run `newswire topics create` to raise it"
        for name, (current, wanted) in below.items()
    ]


def _below_limits(admin: KafkaAdminClient, configs: dict[str, dict[str, str]]) -> dict[str, tuple[int, str]]:
    """The topics of ``configs`` whose ``max.message.bytes`` is below the wanted one: name -> (current, wanted)."""
    if not configs:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": None}) for name in configs]
    described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    below = {}
    for name, wanted in configs.items():
        current = int((described.get(name, {}).get("max.message.bytes") or {}).get("value") or 0)
        if current < int(wanted["max.message.bytes"]):
            below[name] = (current, wanted["max.message.bytes"])
    return below


def _raise_message_limits(
    admin: KafkaAdminClient, configs: dict[str, dict[str, str]], report: Callable[[str], None]
) -> None:
    """Raise ``max.message.bytes`` of existing topics that are below newswire's; never lower it."""
    raise_to = _below_limits(admin, configs)
    if not raise_to:
        return
    changes = [
        ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": wanted})
        for name, (_, wanted) in raise_to.items()
    ]
    results = admin.alter_configs(changes).get("topic", {})
    for name, (current, new) in raise_to.items():
        outcome = results.get(name, "no answer")
        if outcome != "OK":
            raise TopicError(
                f"topic {name!r} accepts records of at most {current} bytes (max.message.bytes) but newswire's limits "
                f"need {new}, and raising it failed ({outcome}); raise it by hand, or lower limits.* to fit"
            )
        report(f"topic {name}: raised max.message.bytes from {current} to {new} to fit the limits.* settings")


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
