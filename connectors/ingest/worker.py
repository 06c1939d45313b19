"""A fetch worker: one member of the consumer group of the fetch-task topic.

It takes one task at a time and commits its offset only once the outcome is durable: a final
outcome's article or dead letter acknowledged by Kafka and the entry marked seen, or a
retry's due time written to the schedule. A crash at any point therefore repeats the task
(the pipeline's dedup drops a repeated article) and never loses it; the delivery count the
schedule keeps turns a task that kills its worker every time into a ``worker_crashed`` dead
letter after ``ingest.max_task_deliveries``, instead of a crash loop.

Transient outcomes become retries with exponential backoff and jitter (the server's
Retry-After first), until ``ingest.retry_max_attempts`` or ``ingest.retry_max_age_s``, then
a ``gave_up`` dead letter with the attempts and the last error. When Kafka or the schedule
cannot be written, the task is not committed: the worker reports the broker not healthy,
waits, and handles it again.

Host-keyed tasks (``KafkaPublisher.publish_fetch_task``) put one host's pages on one
partition, so one worker at a time fetches from a host; the per-host politeness budget is
therefore one budget across worker processes (and the shared host ledger covers the poller
and rebalances; see ``connectors.http.host_ledger``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from connectors.base import Rejected, Retry
from connectors.http import Outcome
from connectors.ingest.config import IngestConfig
from connectors.ingest.fetcher import PageFetcher
from connectors.ingest.schedule import Delivery, Schedule, entry_key
from connectors.publisher import KafkaPublisher, Published
from schemas import CleanedArticle, DeadLetter, RecordDecodeError, decode
from schemas.feed_entry import FeedEntry

log = logging.getLogger(__name__)

# Waits after a failure to write Kafka or the schedule, doubling up to the last.
_OUTAGE_WAITS_S = (0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class FetchEvent:
    """One handled task, for counts and metrics; picklable, so worker processes send it home."""

    source: str
    outcome: str
    # True when the entry is done (published or dead-lettered); False when a retry was scheduled.
    final: bool
    attempts: int = 0
    # Seconds until the retry, when one was scheduled; and whether a Retry-After decided it.
    retry_in_s: float | None = None
    retry_after_honoured: bool = False
    wire_bytes: int = 0
    politeness_wait_s: float = 0.0


@dataclass
class OutcomeCounts:
    """Outcomes counted per source, e.g. counts.by_source['bbc-world']['ok'] == 12."""

    by_source: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, source: str, outcome: str, amount: int = 1) -> None:
        self.by_source.setdefault(source, Counter())[outcome] += amount

    def total(self, outcome: str) -> int:
        return sum(counts[outcome] for counts in self.by_source.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {source: dict(counts) for source, counts in self.by_source.items()}


HealthReport = Callable[[str, bool, str], None]


class FetchWorker:
    def __init__(
        self,
        config: IngestConfig,
        fetcher: PageFetcher,
        publisher: KafkaPublisher,
        schedule: Schedule,
        *,
        on_event: Callable[[FetchEvent], None] | None = None,
        health: HealthReport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._fetcher = fetcher
        self._publisher = publisher
        self._schedule = schedule
        self._on_event = on_event
        self._health = health
        self._rng = rng or random.Random()
        self.counts = OutcomeCounts()
        self._in_hand: tuple[str, str] | None = None
        self._consumer = KafkaConsumer(
            **config.consumer_config,
            group_id=config.fetch_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # One task per poll: each is committed alone, so a crash repeats only the task in hand.
            max_poll_records=1,
            # A page fetch may wait out politeness delays; keep the group membership.
            max_poll_interval_ms=600_000,
            # A worker that died is noticed after this, and its hosts go to another worker.
            session_timeout_ms=int(config.fetch_session_timeout_s * 1000),
            heartbeat_interval_ms=int(config.fetch_session_timeout_s * 1000 / 3),
        )
        self._consumer.subscribe([config.fetch_topic])

    def run(self, stop: threading.Event, *, done: Callable[[], bool] | None = None) -> OutcomeCounts:
        failures = 0
        while not stop.is_set():
            try:
                polled = self._consumer.poll(timeout_ms=200)
            except Exception as error:  # the broker away: wait, never exit
                failures = self._outage(stop, failures, f"polling {self._config.fetch_topic} failed: {error!r}")
                continue
            if not polled:
                if done is not None and done():
                    break
                continue
            for partition, messages in polled.items():
                message = messages[0]
                try:
                    event = self._handle(message)
                    self._consumer.commit({partition: OffsetAndMetadata(message.offset + 1, "", -1)})
                    self._in_hand = None
                except Exception as error:
                    # Not committed: the task is handled again once Kafka (or the schedule) answers.
                    # The worker lived, so this delivery must not count towards worker_crashed.
                    self._forget_delivery()
                    log.warning("fetch task not finished", extra={"offset": message.offset, "error": repr(error)})
                    try:
                        self._consumer.seek(partition, message.offset)
                    except Exception:  # the partition moved to another worker: it resumes from the commit
                        log.info("fetch task left to the partition's new owner", extra={"offset": message.offset})
                    failures = self._outage(stop, failures, f"finishing a fetch task failed: {error!r}")
                    continue
                if failures:
                    failures = 0
                    self._report_health(True, "fetch tasks are committed again")
                if event is not None:
                    self.counts.add(event.source, event.outcome)
                    if self._on_event is not None:
                        self._on_event(event)
        return self.counts

    def _forget_delivery(self) -> None:
        in_hand, self._in_hand = self._in_hand, None
        if in_hand is not None:
            try:
                self._schedule.forget_delivery(*in_hand)
            except Exception:  # the schedule itself failing: at worst the count is one too high
                log.warning("delivery count not corrected", exc_info=True)

    def _outage(self, stop: threading.Event, failures: int, detail: str) -> int:
        if failures == 0:
            self._report_health(False, detail)
        stop.wait(_OUTAGE_WAITS_S[min(failures, len(_OUTAGE_WAITS_S) - 1)])
        return failures + 1

    def _report_health(self, ok: bool, detail: str) -> None:
        if self._health is not None:
            self._health("broker", ok, detail)
        else:
            state = "healthy" if ok else "not healthy"
            (log.info if ok else log.warning)(f"broker {state}", extra={"detail": detail})

    def _handle(self, message: Any) -> FetchEvent | None:
        try:
            entry = decode(message.value, FeedEntry)
        except RecordDecodeError as error:
            self._publisher.publish_dead_letter(
                DeadLetter.of(
                    stage="fetch",
                    error_type="invalid_task",
                    error=str(error),
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key.decode("utf-8", "replace") if message.key else None,
                    original=message.value,
                )
            )
            self._publisher.flush()
            return FetchEvent("(undecodable task)", "invalid_task", final=True)
        key = entry_key(entry)
        delivery = self._schedule.begin(entry, key)
        self._in_hand = (entry.source_name, key) if not isinstance(delivery, str) else None
        if isinstance(delivery, str):
            log.info("fetch task skipped", extra={"url": entry.canonical_url, "reason": delivery})
            return None
        policy = self._config.retry
        if delivery.deliveries > policy.max_task_deliveries:
            crashed = delivery.deliveries - 1
            return self._final(
                entry,
                key,
                delivery,
                self._dead_letter(
                    entry,
                    message,
                    Outcome.WORKER_CRASHED.value,
                    f"{entry.canonical_url}: a fetch worker died {crashed} times while handling this task "
                    f"(ingest.max_task_deliveries={policy.max_task_deliveries}); it is not tried again"
                    + (f"; last error before: {delivery.last_error}" if delivery.last_error else ""),
                ),
            )
        outcome = self._fetcher.fetch(entry)
        if isinstance(outcome, Retry):
            return self._retry(entry, key, delivery, outcome, message)
        if isinstance(outcome, Rejected):
            log.info("page not published", extra={"url": outcome.source_url, "outcome": outcome.error_type})
            dead = outcome.to_dead_letter(topic=message.topic, partition=message.partition, offset=message.offset)
            return self._final(entry, key, delivery, dead)
        return self._final(entry, key, delivery, outcome)

    def _retry(self, entry: FeedEntry, key: str, delivery: Delivery, retry: Retry, message: Any) -> FetchEvent:
        policy = self._config.retry
        attempts = delivery.attempts + 1 if retry.attempted else delivery.attempts
        now = time.time()
        age = now - delivery.queued_at
        if (retry.attempted and attempts >= policy.max_attempts) or age >= policy.max_age_s:
            return self._final(
                entry,
                key,
                delivery,
                self._dead_letter(
                    entry,
                    message,
                    Outcome.GAVE_UP.value,
                    f"{entry.canonical_url}: gave up after {attempts} attempts over {age:.0f}s "
                    f"(ingest.retry_max_attempts={policy.max_attempts}, ingest.retry_max_age_s={policy.max_age_s:g}); "
                    f"last error: {retry.error_type}: {retry.reason}",
                ),
                attempts=attempts,
            )
        delay = policy.delay_s(attempts, retry.after_s, self._rng.random())
        self._schedule.reschedule(
            entry, key, attempts=attempts, due_at=now + delay, error=f"{retry.error_type}: {retry.reason}"
        )
        log.info(
            "page fetch will be retried",
            extra={"url": entry.canonical_url, "outcome": retry.error_type, "attempt": attempts, "in_s": int(delay)},
        )
        return self._event(entry.source_name, retry.error_type, final=False, attempts=attempts,
                           retry_in_s=delay, retry_after_honoured=retry.after_s is not None)  # fmt: skip

    def _dead_letter(self, entry: FeedEntry, message: Any, error_type: str, error: str) -> DeadLetter:
        return DeadLetter.of(
            stage="fetch",
            error_type=error_type,
            error=error,
            source_name=entry.source_name,
            source_url=entry.canonical_url,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )

    def _final(
        self,
        entry: FeedEntry,
        key: str,
        delivery: Delivery,
        result: CleanedArticle | DeadLetter,
        *,
        attempts: int | None = None,
    ) -> FetchEvent:
        if isinstance(result, CleanedArticle):
            published = self._publisher.publish_article(result)
            # Over the raw topic's limit, the publisher sent its too_large dead letter instead.
            outcome = Outcome.OK.value if published is Published.PUBLISHED else Outcome.TOO_LARGE.value
        else:
            self._publisher.publish_dead_letter(result)
            outcome = result.error_type
        self._publisher.flush()  # acknowledged before the entry counts as seen
        self._schedule.finish(entry.source_name, key)
        return self._event(entry.source_name, outcome, final=True, attempts=attempts or delivery.attempts + 1)

    def _event(self, source: str, outcome: str, **fields: Any) -> FetchEvent:
        last = self._fetcher.last_fetch
        return FetchEvent(
            source,
            outcome,
            wire_bytes=last.wire_bytes if last else 0,
            politeness_wait_s=last.timings.queued_s if last else 0.0,
            **fields,
        )

    def close(self) -> None:
        self._consumer.close()


class TasksDrained:
    """Has the fetch group committed every task queued up to now? (``ingest --once``)"""

    def __init__(self, consumer_config: Mapping[str, Any], topic: str, group: str) -> None:
        self._probe = KafkaConsumer(**consumer_config, group_id=group, enable_auto_commit=False)
        self._topic = topic
        self.targets: dict[TopicPartition, int] = {}
        self.refresh()

    def refresh(self) -> None:
        """Aims at the tasks queued up to now (retries queued since are included)."""
        numbers = sorted(self._probe.partitions_for_topic(self._topic) or [])
        partitions = [TopicPartition(self._topic, p) for p in numbers]
        self.targets = dict(self._probe.end_offsets(partitions))

    def __call__(self) -> bool:
        return all((self._probe.committed(p) or 0) >= end for p, end in self.targets.items())

    def close(self) -> None:
        self._probe.close()
