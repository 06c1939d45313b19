"""What every short-lived kafka-python client of newswire needs on top of its own settings.

A micro-batch opens its consumers and producers afresh (a DoFn's ``setup``), so whatever a
new client waits for before its first record is paid on every batch and counts straight into
end-to-end latency. It lives on the ground floor, beside ``schemas.producer``, because both
``connectors`` and ``pipeline`` open clients and neither may import the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from kafka import KafkaConsumer
from kafka.cluster import ClusterMetadata

Client = TypeVar("Client")

# Least time between two metadata refreshes of one client. kafka-python 3.0 keeps its own
# 100 ms here whatever ``retry_backoff_ms`` the client is given: a new client fetches
# metadata without topics when it connects, so its first send to (or fetch from) a topic
# waited those 100 ms for the second refresh, twice per micro-batch for the producers alone.
# Failed refreshes still back off exponentially (KIP-580), apart from this spacing.
METADATA_REFRESH_SPACING_MS = 20


def prompt_metadata(client: Client) -> Client:
    """``client`` (a ``KafkaProducer`` or ``KafkaConsumer``) with refreshes spaced by
    ``METADATA_REFRESH_SPACING_MS`` at most; unchanged where kafka-python keeps its metadata
    elsewhere (the spacing then is whatever that version does)."""
    for attribute in ("_metadata", "_cluster"):  # KafkaProducer's, KafkaConsumer's
        cluster = getattr(client, attribute, None)
        if isinstance(cluster, ClusterMetadata):
            spacing = cluster.config.get("retry_backoff_ms", METADATA_REFRESH_SPACING_MS)
            cluster.config["retry_backoff_ms"] = min(spacing, METADATA_REFRESH_SPACING_MS)
    return client


def range_reader(config: Mapping[str, Any], **options: Any) -> KafkaConsumer:
    """A consumer in no group that commits nothing, for the offsets its caller assigns and seeks
    (a batch's ranges, a read-back, one poison record), with ``prompt_metadata``."""
    return prompt_metadata(KafkaConsumer(**config, group_id=None, enable_auto_commit=False, **options))
