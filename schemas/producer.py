"""The one durable Kafka producer of newswire records, shared by the connectors and the pipeline.

Durable means acknowledged by every in-sync replica (``acks=all``) and idempotent, so a
retry after a lost acknowledgement is not written twice. A send never raises by itself:
the failures of every send since the last ``flush`` are raised by ``flush``, and the
caller decides what a failure means (the pipeline fails its bundle so the batch re-runs;
a connector tells its caller to retry before it marks anything seen).

It lives here, beside ``schemas.consumer``, because both ``connectors`` and ``pipeline``
need it and neither may import the other; like the consumer it knows Kafka and encoded
records, and nothing of which topic means what. It must never swallow a failed send,
and never weaken the durability its caller's configuration asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka import KafkaProducer

from schemas.kafka_clients import prompt_metadata

# Forced whatever the configuration says: a newswire record is never sent fire-and-forget.
DURABILITY: Mapping[str, Any] = {"acks": "all", "enable_idempotence": True}
# Waiting a little lets sends to one partition share a request; overridable.
DEFAULT_LINGER_MS = 20
# Bytes of records one partition's batch gathers before it is sent; overridable. kafka-python's
# 16 KiB held two or three articles, and every batch filled wakes the sender thread, which cost
# more CPU than the send itself. Each topic takes batches of its record limit plus 64 KiB of
# framing (``max.message.bytes``, newswire.topics), so a batch this size always fits; one
# record larger than this still travels alone, within its topic's limit.
DEFAULT_BATCH_BYTES = 64 * 1024


class ProduceFailed(RuntimeError):
    """Kafka refused or timed out records since the last flush; nothing was dropped silently."""

    def __init__(self, failures: Sequence[BaseException], what: str) -> None:
        super().__init__(f"{len(failures)} record(s) to {what} were not acknowledged by Kafka: {failures[0]!r}")
        self.failures = tuple(failures)


class DurableProducer:
    """``send`` records, then ``flush`` to wait until Kafka holds them all (or raise ``ProduceFailed``)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._producer = prompt_metadata(
            KafkaProducer(**{"linger_ms": DEFAULT_LINGER_MS, "batch_size": DEFAULT_BATCH_BYTES, **config, **DURABILITY})
        )
        self._failures: list[BaseException] = []
        self._topics: set[str] = set()

    def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Queue one record (on ``partition``, else where its key hashes). Its failure surfaces on
        ``flush``, or, with ``on_failure``, is handed to it instead (called by then), for a caller that
        tells a refused record apart from an outage."""
        future = self._producer.send(topic, key=key, value=value, headers=list(headers), partition=partition)
        future.add_errback(on_failure or self._failures.append)
        self._topics.add(topic)

    def flush(self) -> None:
        """Block until every record sent so far is acknowledged; raise if any was refused."""
        self._producer.flush()
        topics, self._topics = self._topics, set()
        if self._failures:
            failures, self._failures = self._failures, []
            raise ProduceFailed(failures, ", ".join(sorted(topics)) or "Kafka")

    def close(self) -> None:
        """Flush, then release the connection even if the flush raised."""
        try:
            self.flush()
        finally:
            self._producer.close()
