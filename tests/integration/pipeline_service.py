"""The micro-batch service of one test, on the real broker: its settings, input and outputs.

Tests of failures and outages run ``MicroBatchService`` in the test process (a thread),
so that they can watch its ``health`` reports and its log while they break things.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from newswire import wiring
from newswire.settings import PipelineSettings, RecoverySettings, Settings, SinkSettings, TopicSettings
from newswire.tail import records_to_end
from newswire.testing.corpus import generated_seed_texts
from newswire.testing.postgres import PostgresServer
from pipeline.microbatch import BatchReport, MicroBatchService
from schemas import CleanedArticle, DeadLetter, SourceKind, SourceRef, decode, encode
from schemas.timestamps import utc_now


def articles(count: int, *, prefix: str = "seed-gen") -> list[CleanedArticle]:
    """``count`` distinct articles (none a duplicate of another)."""
    from connectors.seeds import split_seed_text

    made = []
    for number, (_, text) in enumerate(generated_seed_texts(count, seed=11)):
        title, body = split_seed_text(text)
        made.append(
            CleanedArticle(
                article_id=f"{prefix}{number}",
                title=title,
                body=body,
                fetched_at=utc_now(),
                source=SourceRef(kind=SourceKind.SEED, name="test"),
            )
        )
    return made


def publish(bootstrap: str, topic: str, values: Sequence[CleanedArticle | bytes], *, partition: int = 0) -> None:
    """Each value to ``partition`` of ``topic``, in order (so offsets are the list's indexes)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for value in values:
            raw = value if isinstance(value, bytes) else encode(value)
            key = value.article_id.encode() if isinstance(value, CleanedArticle) else None
            producer.send(topic, key=key, value=raw, partition=partition)
        producer.flush()
    finally:
        producer.close()


def settings_for(
    base: Settings,
    topics: TopicSettings,
    work: Path,
    *,
    sinks: tuple[Any, ...] = ("sqlite",),
    database: PostgresServer | None = None,
    max_batch_records: int = 20_000,
) -> Settings:
    sink_settings: dict[str, Any] = {"enabled": sinks, "output_dir": work / "output"}
    if database is not None:
        sink_settings.update(postgres_dsn=database.dsn, postgres_password=database.password)
    return base.model_copy(
        update={
            "topics": topics,
            "sinks": SinkSettings(**sink_settings),
            "pipeline": PipelineSettings(
                dedup_index=work / "state" / "dedup.sqlite3",
                consumer_group=f"test-{uuid.uuid4().hex[:8]}",
                batch_interval_s=0.2,
                max_batch_records=max_batch_records,
                enrichers=("text_stats",),
                parallelism=1,  # in the test's process: tests share two cores
            ),
            # Quick retries: the tests wait out outages of seconds, not minutes.
            "recovery": RecoverySettings(batch_attempts=2, initial_backoff_s=0.2, max_backoff_s=1.0),
        }
    )


def dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    from newswire.settings import KafkaSettings

    return [decode(m.value, DeadLetter) for m in records_to_end(KafkaSettings(bootstrap_servers=bootstrap), topic)]


@dataclass
class HealthLog:
    """Every ``health(check, ok, detail)`` call, in order."""

    calls: list[tuple[str, bool, str]] = field(default_factory=list)

    def __call__(self, check: str, ok: bool, detail: str) -> None:
        self.calls.append((check, ok, detail))

    def states(self, check: str) -> list[bool]:
        return [ok for name, ok, _ in self.calls if name == check]


@dataclass
class RunningService:
    service: MicroBatchService
    thread: threading.Thread
    stop: threading.Event
    reports: list[BatchReport]
    errors: list[BaseException]


@contextmanager
def running_service(settings: Settings, health: HealthLog | None = None) -> Iterator[RunningService]:
    """The continuous service in a thread; stopped (its batch in flight finished) on exit."""
    reports: list[BatchReport] = []
    errors: list[BaseException] = []
    # A job server, should the runner need one, lives as long as the service.
    with wiring.JobServers() as job_servers:
        service = wiring.micro_batch_service(settings, job_servers, on_batch=reports.append, health=health)
        stop = threading.Event()

        def run() -> None:
            try:
                service.run(until_caught_up=False, stop=stop)
            except BaseException as error:  # the test asserts the service never exits on its own
                errors.append(error)

        thread = threading.Thread(target=run, name="micro-batch-service", daemon=True)
        thread.start()
        try:
            yield RunningService(service, thread, stop, reports, errors)
        finally:
            stop.set()
            thread.join(timeout=120)
            service.close()
