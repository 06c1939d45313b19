"""The poller: polls each due source, queues its new entries as fetch tasks, backs off on failure.

``FeedSource`` and ``PageSource`` implement the ``PollingSource`` contract of
``connectors.base``: a poll returns entries (with final problems to dead-letter, and the
least interval the publisher asked for through RSS ``<ttl>`` or ``Cache-Control: max-age``)
or a ``Retry`` for a transient failure (timeout, connection error, DNS, 429, 5xx). The
``Poller`` decides when each source is due: an interval that adapts to how often the
source changes while it answers, an exponential backoff with jitter per source while it
fails (honouring Retry-After), persisted in the schedule so a restart keeps both. It
queues an entry only if it is neither seen (final) nor in flight, records it in flight once
its task is acknowledged, and releases due page retries back onto the fetch-task topic.

It must never mark an entry seen (only a final outcome does, in the worker), and a failing
or raising source must never stop the others or be polled in a tight loop.
"""

from __future__ import annotations

import logging
import random
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace

from connectors.base import Polled, PollingSource, Rejected, Retry
from connectors.feed_document import FeedOutcome, ParsedFeed, parse_feed_document
from connectors.http import FetchResult, HttpClient, Outcome
from connectors.ingest.config import IngestConfig
from connectors.ingest.fetcher import host_held_back
from connectors.ingest.schedule import PollState, Schedule, entry_key
from connectors.publisher import KafkaPublisher
from connectors.seen_store import FeedState, SeenStore
from connectors.sources import SourceConfig, SourceType
from schemas import DeadLetter, canonicalize_url
from schemas.feed_entry import FeedEntry, FeedKind

log = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_RSS_TTL = re.compile(rb"<ttl>\s*(\d{1,6})\s*</ttl>", re.IGNORECASE)
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*(\d{1,9})", re.IGNORECASE)


@dataclass(frozen=True)
class PollReport:
    source: str
    outcome: str
    detail: str
    entries_found: int = 0
    entries_queued: int = 0
    # Seconds until this source is due again.
    next_poll_in_s: float = 0.0
    failures: int = 0
    # The poll failed transiently (timeout, 5xx...) and will be tried again after a backoff.
    retrying: bool = False


class FeedSource:
    """A feed or sitemap of sources.yaml, read by conditional GET through the one HTTP layer."""

    def __init__(
        self,
        source: SourceConfig,
        http: HttpClient,
        store: SeenStore,
        max_child_sitemaps: int,
        max_host_wait_s: float = 60.0,
    ) -> None:
        self.name = source.name
        self._max_host_wait_s = max_host_wait_s
        self._source = source
        self._http = http
        self._store = store
        self._max_child_sitemaps = max_child_sitemaps
        self._read: FeedState | None = None

    def poll(self) -> Polled | Retry:
        source = self._source
        self._read = None
        held_back = host_held_back(self._http, source.url, self._max_host_wait_s)
        if held_back is not None:
            return held_back
        state = self._store.feed_state(source.url)
        fetched = self._http.fetch(source.url, validators=state.validators, accept=FEED_ACCEPT)
        now = time.time()
        if fetched.outcome is Outcome.NOT_MODIFIED:
            self._store.save_feed_state(source.url, replace(state, last_polled_at=now))
            return Polled(Outcome.NOT_MODIFIED.value, "304 Not Modified", min_interval_s=_max_age(fetched))
        if not fetched.ok:
            detail = f"source {source.name}: {fetched.detail or fetched.outcome.value}"
            if fetched.retryable:
                return Retry(fetched.outcome.value, detail, fetched.retry_after_s)
            rejected = self._rejected("poll", fetched.outcome.value, detail, fetched)
            return Polled(fetched.outcome.value, detail, rejected=(rejected,))
        parsed = self._parse(fetched)
        entries = list(parsed.entries)
        problems: list[Rejected] = []
        for child in parsed.child_sitemaps[: self._max_child_sitemaps]:
            if state.last_polled_at and child.lastmod and child.lastmod.timestamp() < state.last_polled_at:
                continue  # unchanged since we last read it (its lastmod says so)
            child_fetch = self._http.fetch(child.url, accept=FEED_ACCEPT)
            if child_fetch.ok:
                entries.extend(self._parse(child_fetch).entries)
            else:
                detail = f"source {source.name}: {child_fetch.detail or child_fetch.outcome.value}"
                problems.append(self._rejected("poll", child_fetch.outcome.value, detail, child_fetch))
        # Saved once the entries are queued (``queued``): a 304 must never hide entries not yet queued.
        self._read = FeedState(fetched.validators, state.poll_interval_s, now)
        min_interval = publisher_poll_interval(fetched)
        if parsed.outcome is not FeedOutcome.OK and not entries:
            # Zero entries is an outcome to report, never a silent success.
            detail = f"source {source.name}: {parsed.detail}"
            problems.append(self._rejected("parse", parsed.outcome.value, detail, fetched))
            return Polled(parsed.outcome.value, parsed.detail, rejected=tuple(problems), min_interval_s=min_interval)
        for reason in parsed.skipped:
            log.info("entry skipped", extra={"source": source.name, "reason": reason})
        return Polled("ok", parsed.detail, tuple(entries), tuple(problems), min_interval)

    def queued(self) -> None:
        if self._read is not None:
            self._store.save_feed_state(self._source.url, self._read)
            self._read = None

    def _parse(self, fetched: FetchResult) -> ParsedFeed:
        return parse_feed_document(
            fetched.body,
            url=fetched.final_url,
            content_type=fetched.content_type,
            source_name=self.name,
            source_language=self._source.language,
        )

    def _rejected(self, stage: str, outcome: str, detail: str, fetched: FetchResult) -> Rejected:
        return Rejected(
            stage=stage,
            error_type=outcome,
            reason=detail,
            source_name=self.name,
            source_url=fetched.final_url or self._source.url,
        )


class PageSource:
    """A ``page`` source of sources.yaml: one article page, its own single entry."""

    def __init__(self, source: SourceConfig) -> None:
        self.name = source.name
        self._source = source

    def poll(self) -> Polled:
        source = self._source
        entry = FeedEntry(
            canonical_url=canonicalize_url(source.url),
            url=source.url,
            language=source.language,
            tags=list(source.tags),
            feed_url=source.url,
            source_name=source.name,
            found_in=FeedKind.PAGE,
            provenance={"canonical_url": "sources.yaml page url"},
        )
        return Polled("ok", "page source", (entry,))

    def queued(self) -> None:
        """A page source remembers nothing between polls."""


def _max_age(fetched: FetchResult) -> float | None:
    match = _MAX_AGE.search(fetched.headers.get("cache-control", ""))
    return float(match.group(1)) if match else None


def publisher_poll_interval(fetched: FetchResult) -> float | None:
    """The least interval between polls the publisher asked for: RSS <ttl> (minutes), Cache-Control max-age."""
    asked = [value for value in (_max_age(fetched),) if value is not None]
    ttl = _RSS_TTL.search(fetched.body[:65_536])
    if ttl:
        asked.append(int(ttl.group(1)) * 60.0)
    return max(asked) if asked else None


def polling_source(source: SourceConfig, http: HttpClient, store: SeenStore, config: IngestConfig) -> PollingSource:
    if source.type is SourceType.PAGE:
        return PageSource(source)
    return FeedSource(source, http, store, config.max_child_sitemaps, config.max_host_wait_s)


class Poller:
    """Polls due sources and releases due retries; one per service, driven by one thread."""

    def __init__(
        self,
        config: IngestConfig,
        sources: tuple[SourceConfig, ...],
        http: HttpClient,
        store: SeenStore,
        schedule: Schedule,
        publisher: KafkaPublisher,
        *,
        rng: random.Random | None = None,
        on_poll: Callable[[PollReport], None] | None = None,
    ) -> None:
        self._config = config
        self._sources = tuple(s for s in sources if s.enabled)
        self._polling = {s.name: polling_source(s, http, store, config) for s in self._sources}
        self._store = store
        self._schedule = schedule
        self._publisher = publisher
        self._rng = rng or random.Random()
        self._on_poll = on_poll

    @property
    def sources(self) -> tuple[SourceConfig, ...]:
        return self._sources

    def due(self, now: float) -> list[SourceConfig]:
        due = []
        for source in self._sources:
            state = self._schedule.poll_state(source.name)
            if state is None or state.due_at <= now:
                due.append(source)
        return due

    def next_due(self) -> float:
        states = [self._schedule.poll_state(s.name) for s in self._sources]
        return min((s.due_at if s else 0.0 for s in states), default=float("inf"))

    def poll_due(self, now: float, should_stop: Callable[[], bool] = lambda: False) -> list[PollReport]:
        reports = []
        for source in self.due(now):
            if should_stop():
                break
            reports.append(self.poll(source))
        return reports

    def poll_all(self, should_stop: Callable[[], bool] = lambda: False) -> list[PollReport]:
        """Polls every source now, whenever it is due (``ingest --once``: the operator asked)."""
        reports = []
        for source in self._sources:
            if should_stop():
                break
            reports.append(self.poll(source))
        return reports

    def poll(self, source: SourceConfig) -> PollReport:
        """One poll of ``source``, its new entries queued, and its next due time recorded."""
        previous = self._schedule.poll_state(source.name)
        try:
            polled = self._polling[source.name].poll()
        except Exception as error:  # a bug with one source must not stop the others, nor spin
            log.exception("poll raised", extra={"source": source.name})
            polled = Retry(Outcome.INTERNAL_ERROR.value, f"source {source.name}: poll raised {error!r}: "
                           f"{traceback.format_exception_only(error)[-1].strip()}")  # fmt: skip
        if isinstance(polled, Retry) and not polled.attempted:
            # Nothing was asked of the publisher: come back when its host is free, no failure counted.
            due = time.time() + (polled.after_s or 0.0)
            kept = previous or PollState(due, None, 0, None)
            self._schedule.save_poll_state(source.name, replace(kept, due_at=due))
            report = PollReport(source.name, polled.error_type, polled.reason, next_poll_in_s=polled.after_s or 0.0,
                                failures=kept.failures, retrying=True)  # fmt: skip
        elif isinstance(polled, Retry):
            report = self._failed(source, previous, polled.error_type, polled.reason, polled.after_s)
            report = replace(report, retrying=True)
        else:
            for rejected in polled.rejected:
                self._publisher.publish_dead_letter(rejected.to_dead_letter())
            queued = self._queue(source, polled.entries)
            self._polling[source.name].queued()
            if polled.rejected and not polled.entries:
                report = self._failed(source, previous, polled.outcome, polled.detail, None, final=True)
            else:
                report = self._answered(source, previous, polled, queued)
        log.info(
            "polled",
            extra={
                "source": source.name,
                "outcome": report.outcome,
                "detail": report.detail,
                "queued": report.entries_queued,
                "next_poll_in_s": round(report.next_poll_in_s, 1),
            },
        )
        if self._on_poll is not None:
            self._on_poll(report)
        return report

    def _queue(self, source: SourceConfig, entries: tuple[FeedEntry, ...]) -> int:
        by_key = {entry_key(e): e for e in entries}
        candidates = list(by_key)
        in_flight = self._schedule.in_flight(source.name, candidates)
        unseen = self._store.unseen(source.name, [k for k in candidates if k not in in_flight])
        new_keys = unseen[: self._config.max_entries_per_poll]
        queued = {}
        for key in new_keys:
            entry = by_key[key]
            if source.language and not entry.language:
                entry = entry.model_copy(update={"language": source.language})
            self._publisher.publish_fetch_task(entry)
            queued[key] = entry
        self._publisher.flush()  # only acknowledged tasks are in flight
        self._schedule.queued(source.name, queued)
        return len(queued)

    def _answered(self, source: SourceConfig, previous: PollState | None, polled: Polled, queued: int) -> PollReport:
        now = time.time()
        current = previous.interval_s if previous and previous.interval_s else source.min_poll_interval_s
        # Halve the wait after a change, stretch it by half after a quiet poll, within bounds.
        adapted = current / 2 if queued else current * 1.5
        interval = min(source.max_poll_interval_s, max(source.min_poll_interval_s, adapted))
        if polled.min_interval_s is not None:
            # The publisher's <ttl> or max-age: polling sooner only costs them and us.
            interval = min(source.max_poll_interval_s, max(interval, polled.min_interval_s))
        if previous is not None and previous.failures:
            log.warning("source answers again", extra={"source": source.name, "after_failures": previous.failures})
        self._schedule.save_poll_state(source.name, PollState(now + interval, interval, 0, None))
        detail = f"{polled.detail}; {queued} new" if polled.entries else polled.detail
        return PollReport(source.name, polled.outcome, detail, len(polled.entries), queued, interval)

    def _failed(
        self,
        source: SourceConfig,
        previous: PollState | None,
        outcome: str,
        detail: str,
        retry_after_s: float | None,
        *,
        final: bool = False,
    ) -> PollReport:
        policy = self._config.retry
        failures = (previous.failures if previous else 0) + 1
        delay = policy.delay_s(failures, retry_after_s, self._rng.random())
        interval = previous.interval_s if previous else None
        if final:
            # A 404 or an unreadable document will not mend sooner for asking sooner than usual.
            delay = max(delay, interval or source.min_poll_interval_s)
        self._schedule.save_poll_state(source.name, PollState(time.time() + delay, interval, failures, detail))
        if failures == policy.poll_gave_up_after:
            self._publisher.publish_dead_letter(
                DeadLetter.of(
                    stage="poll",
                    error_type=Outcome.GAVE_UP.value,
                    error=f"source {source.name} failed {failures} polls in a row (ingest.poll_gave_up_after="
                    f"{policy.poll_gave_up_after}); still polling every {delay:.0f}s at most; last error: {detail}",
                    source_name=source.name,
                    source_url=source.url,
                )
            )
        self._publisher.flush()
        return PollReport(source.name, outcome, detail, next_poll_in_s=delay, failures=failures)

    def release_due_retries(self, now: float) -> int:
        """Queues again every page retry that is due; returns how many."""
        due = self._schedule.due_retries(now)
        if not due:
            return 0
        for retry in due:
            self._publisher.publish_fetch_task(retry.entry)
        self._publisher.flush()
        self._schedule.released(due)
        return len(due)
