"""The Python client for downstream teams: a typed consumer of newswire's topics.

``RecordConsumer`` subscribes with a group id, yields validated models, hands records
that do not decode to a callback instead of crashing, and commits offsets only after the
caller's handler has returned for every record of a poll, so a consumer that dies mid-way
re-reads what it had not finished (at-least-once; records are keyed by ``article_id``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata
from pydantic import BaseModel

from schemas.codec import RecordDecodeError, decode

log = logging.getLogger(__name__)
Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Undecodable:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: str


def log_undecodable(record: Undecodable) -> None:
    log.warning(
        "undecodable record skipped",
        extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "error": record.error},
    )


class RecordConsumer(Generic[Model]):
    def __init__(
        self,
        topic: str,
        model: type[Model],
        *,
        group_id: str,
        bootstrap_servers: str | list[str],
        on_undecodable: Callable[[Undecodable], None] = log_undecodable,
        from_beginning: bool = True,
        **kafka_config: Any,
    ) -> None:
        self._model = model
        self._on_undecodable = on_undecodable
        self._consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            **kafka_config,
        )

    def run(self, handler: Callable[[Model], None], *, stop: threading.Event | None = None) -> None:
        """Call ``handler`` with each record until ``stop`` is set; commit after it returns."""
        while stop is None or not stop.is_set():
            polled = self._consumer.poll(timeout_ms=500)
            offsets = {}
            for partition, messages in polled.items():
                for message in messages:
                    try:
                        record = decode(message.value, self._model)
                    except RecordDecodeError as error:
                        self._on_undecodable(
                            Undecodable(
                                message.topic, message.partition, message.offset, message.key, message.value, str(error)
                            )
                        )
                    else:
                        handler(record)
                    offsets[partition] = OffsetAndMetadata(message.offset + 1, "", -1)
            if offsets:
                self._consumer.commit(offsets)

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> RecordConsumer[Model]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
