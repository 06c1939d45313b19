"""What the ingest service is built with: typed values the shell derives from the settings.

Everything here is picklable, because fetch-worker processes are started with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.page_verdicts import VerdictLimits
from connectors.publisher import KafkaPublisher, PublishLimits


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried; each field is an ``ingest.*`` setting of the same name."""

    max_attempts: int = 6
    max_age_s: float = 86_400.0
    backoff_s: float = 30.0
    backoff_max_s: float = 3_600.0
    jitter: float = 0.5
    retry_after_max_s: float = 3_600.0
    max_task_deliveries: int = 3
    poll_gave_up_after: int = 6

    def delay_s(self, failures: int, retry_after_s: float | None, draw: float) -> float:
        """The wait after the ``failures``-th failure in a row: exponential, with ``jitter`` of it
        drawn at random (``draw`` in [0, 1)), and never shorter than a Retry-After (capped)."""
        ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** max(0, failures - 1))
        backoff = ceiling * (1 - self.jitter) + ceiling * self.jitter * draw
        if retry_after_s is not None:
            # The server said when; our own guess would only be later or ruder.
            return min(max(retry_after_s, 0.0), self.retry_after_max_s)
        return backoff


@dataclass(frozen=True)
class IngestConfig:
    producer_config: Mapping[str, Any]
    consumer_config: Mapping[str, Any]
    raw_topic: str
    dead_letter_topic: str
    fetch_topic: str
    fetch_group: str
    state_file: Path
    archive_dir: Path
    archive_max_file_bytes: int
    publish_limits: PublishLimits
    verdict_limits: VerdictLimits = field(default_factory=VerdictLimits)
    max_child_sitemaps: int = 50
    max_entries_per_poll: int = 1_000
    date_disagreement_s: float = 86_400.0
    future_date_tolerance_s: float = 21_600.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    schedule_check_interval_s: float = 1.0
    fetch_session_timeout_s: float = 15.0
    max_host_wait_s: float = 60.0

    @property
    def host_ledger_file(self) -> Path:
        """The SQLite file through which every ingest process shares per-host politeness and robots.txt."""
        return self.state_file.with_name(self.state_file.stem + ".hosts.sqlite3")

    def publisher(self) -> KafkaPublisher:
        return KafkaPublisher(
            self.producer_config,
            raw_topic=self.raw_topic,
            dead_letter_topic=self.dead_letter_topic,
            limits=self.publish_limits,
            fetch_task_topic=self.fetch_topic,
        )
