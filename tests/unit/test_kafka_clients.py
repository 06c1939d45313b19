"""prompt_metadata: the spacing of a client's metadata refreshes, capped, never raised."""

from __future__ import annotations

from types import SimpleNamespace

from kafka.cluster import ClusterMetadata

from schemas.kafka_clients import METADATA_REFRESH_SPACING_MS, prompt_metadata


def test_kafka_python_default_spacing_is_capped() -> None:
    producer_like = SimpleNamespace(_metadata=ClusterMetadata())
    consumer_like = SimpleNamespace(_cluster=ClusterMetadata())
    assert producer_like._metadata.config["retry_backoff_ms"] > METADATA_REFRESH_SPACING_MS
    assert prompt_metadata(producer_like) is producer_like
    prompt_metadata(consumer_like)
    assert producer_like._metadata.config["retry_backoff_ms"] == METADATA_REFRESH_SPACING_MS
    assert consumer_like._cluster.config["retry_backoff_ms"] == METADATA_REFRESH_SPACING_MS


def test_a_shorter_spacing_is_kept_and_other_objects_are_left_alone() -> None:
    quicker = SimpleNamespace(_metadata=ClusterMetadata(retry_backoff_ms=5))
    prompt_metadata(quicker)
    assert quicker._metadata.config["retry_backoff_ms"] == 5
    unrelated = SimpleNamespace(_metadata={"retry_backoff_ms": 100})
    prompt_metadata(unrelated)
    assert unrelated._metadata == {"retry_backoff_ms": 100}
