"""The live ingest service: poll sources, queue page fetches by host, fetch, clean, publish.

Two roles meet through the fetch-task topic. A poller fetches each due feed or sitemap
(conditional GET), parses it, and queues each new entry as a ``FeedEntry`` keyed by its
host. Fetch workers (a consumer group, one or many processes) take those tasks, fetch the
page through the one HTTP layer, archive it as WARC, extract it, judge whether it is an
article at all, and publish a ``CleanedArticle`` to the raw topic or a dead letter saying
why not. A worker commits a task only after its article or dead letter is acknowledged,
so a crash repeats work (the pipeline's dedup drops the repeat) and never loses it.
No source failing can stop the others: every failure ends in a counted outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from connectors.cleaning.extract import ExtractedPage, extract_article
from connectors.feed_dates import AMBIGUOUS_DAY_MONTH, trusted_publication
from connectors.feed_document import FeedOutcome, ParsedFeed, parse_feed_document
from connectors.http import FetchResult, HttpClient, Outcome
from connectors.page_archive import PageArchive
from connectors.page_verdicts import VerdictLimits, page_verdict
from connectors.publisher import KafkaPublisher
from connectors.seen_store import FeedState, SeenStore
from connectors.sources import SourceConfig, SourceType
from schemas import (
    CleanedArticle,
    DeadLetter,
    FeedItem,
    RecordDecodeError,
    SourceKind,
    SourceRef,
    article_id_for_url,
    canonicalize_url,
    decode,
)
from schemas.feed_entry import FeedEntry, FeedKind
from schemas.timestamps import utc_now

log = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


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
    verdict_limits: VerdictLimits = field(default_factory=VerdictLimits)
    max_child_sitemaps: int = 50
    max_entries_per_poll: int = 1_000
    date_disagreement_s: float = 86_400.0
    future_date_tolerance_s: float = 21_600.0

    def publisher(self) -> KafkaPublisher:
        return KafkaPublisher(
            self.producer_config,
            raw_topic=self.raw_topic,
            dead_letter_topic=self.dead_letter_topic,
            fetch_task_topic=self.fetch_topic,
        )


@dataclass
class OutcomeCounts:
    """Outcomes counted per source, e.g. counts['bbc-world']['ok'] == 12."""

    by_source: dict[str, Counter[str]] = field(default_factory=dict)

    on_add: Callable[[str, str], None] | None = None

    def add(self, source: str, outcome: str, amount: int = 1) -> None:
        self.by_source.setdefault(source, Counter())[outcome] += amount
        if self.on_add is not None:
            self.on_add(source, outcome)

    def total(self, outcome: str) -> int:
        return sum(counts[outcome] for counts in self.by_source.values())


@dataclass(frozen=True)
class PollReport:
    source: str
    outcome: str
    detail: str
    entries_found: int = 0
    entries_queued: int = 0


def _entry_key(entry: FeedEntry) -> str:
    """What 'seen' means for an entry: its id (or URL), and its update time when it has one,
    so an updated sitemap entry is fetched again as a new version."""
    key = entry.entry_id or entry.canonical_url
    return f"{key}@{entry.updated_at.isoformat()}" if entry.updated_at else key


class FeedPoller:
    """Polls sources and queues their new entries; one per process, not thread-safe."""

    def __init__(self, config: IngestConfig, http: HttpClient, store: SeenStore, publisher: KafkaPublisher) -> None:
        self._config = config
        self._http = http
        self._store = store
        self._publisher = publisher

    def poll(self, source: SourceConfig) -> PollReport:
        if source.type is SourceType.PAGE:
            return self._queue(source, [self._page_entry(source)], found=1)
        state = self._store.feed_state(source.url)
        fetched = self._http.fetch(source.url, validators=state.validators, accept=FEED_ACCEPT)
        now = time.time()
        if fetched.outcome is Outcome.NOT_MODIFIED:
            self._store.save_feed_state(source.url, replace(state, last_polled_at=now))
            return PollReport(source.name, Outcome.NOT_MODIFIED.value, "304 Not Modified")
        if not fetched.ok:
            self._dead_letter(source, "poll", fetched.outcome.value, fetched.detail or fetched.outcome.value, fetched)
            return PollReport(source.name, fetched.outcome.value, fetched.detail or "")
        parsed = self._parse(source, fetched)
        entries = list(parsed.entries)
        for child in parsed.child_sitemaps[: self._config.max_child_sitemaps]:
            if state.last_polled_at and child.lastmod and child.lastmod.timestamp() < state.last_polled_at:
                continue  # unchanged since we last read it (its lastmod says so)
            child_fetch = self._http.fetch(child.url, accept=FEED_ACCEPT)
            if child_fetch.ok:
                entries.extend(self._parse(source, child_fetch).entries)
            else:
                self._dead_letter(source, "poll", child_fetch.outcome.value, child_fetch.detail or "", child_fetch)
        self._store.save_feed_state(
            source.url,
            FeedState(fetched.validators, state.poll_interval_s, now),
        )
        if parsed.outcome is not FeedOutcome.OK and not entries:
            # Zero entries is an outcome to report, never a silent success.
            self._dead_letter(source, "parse", parsed.outcome.value, parsed.detail, fetched)
            return PollReport(source.name, parsed.outcome.value, parsed.detail)
        return self._queue(source, entries, found=len(entries))

    def _parse(self, source: SourceConfig, fetched: FetchResult) -> ParsedFeed:
        return parse_feed_document(
            fetched.body,
            url=fetched.final_url,
            content_type=fetched.content_type,
            source_name=source.name,
            source_language=source.language,
        )

    def _page_entry(self, source: SourceConfig) -> FeedEntry:
        canonical = canonicalize_url(source.url)
        return FeedEntry(
            canonical_url=canonical,
            url=source.url,
            language=source.language,
            tags=list(source.tags),
            feed_url=source.url,
            source_name=source.name,
            found_in=FeedKind.SITEMAP,
            provenance={"canonical_url": "sources.yaml page url"},
        )

    def _queue(self, source: SourceConfig, entries: list[FeedEntry], *, found: int) -> PollReport:
        by_key = {_entry_key(e): e for e in entries}
        new_keys = self._store.unseen(source.name, by_key)[: self._config.max_entries_per_poll]
        for key in new_keys:
            entry = by_key[key]
            if source.language and not entry.language:
                entry = entry.model_copy(update={"language": source.language})
            self._publisher.publish_fetch_task(entry)
        self._publisher.flush()  # only acknowledged tasks count as seen
        self._store.mark_seen(source.name, new_keys)
        return PollReport(source.name, "ok", f"{found} entries, {len(new_keys)} new", found, len(new_keys))

    def _dead_letter(self, source: SourceConfig, stage: str, outcome: str, detail: str, fetched: FetchResult) -> None:
        self._publisher.publish_dead_letter(
            DeadLetter(
                stage=stage,
                error_type=outcome,
                error=f"source {source.name}: {detail}",
                occurred_at=utc_now(),
                source_name=source.name,
                source_url=fetched.final_url or source.url,
            )
        )
        self._publisher.flush()


class PageFetcher:
    """Turns one fetch task into an article or a dead letter; thread-compatible, one per worker."""

    def __init__(self, config: IngestConfig, http: HttpClient, archive: PageArchive) -> None:
        self._config = config
        self._http = http
        self._archive = archive

    def process(self, entry: FeedEntry) -> CleanedArticle | DeadLetter:
        fetched = self._http.fetch(entry.canonical_url, accept=PAGE_ACCEPT)
        if not fetched.ok:
            return self._dead_letter(entry, "fetch", fetched.outcome.value, fetched.detail or "", fetched.final_url)
        self._archive.archive(fetched.final_url, fetched.status or 200, fetched.headers, fetched.body)
        media_type = fetched.content_type or "text/html"
        if fetched.text is None or not media_type.startswith(("text/html", "application/xhtml")):
            return self._dead_letter(
                entry, "extract", Outcome.NOT_AN_ARTICLE.value, f"not HTML ({fetched.content_type})", fetched.final_url
            )
        page = extract_article(fetched.text, url=fetched.final_url)
        verdict = page_verdict(fetched.text, page, self._config.verdict_limits)
        if not verdict.is_article:
            return self._dead_letter(entry, "extract", verdict.outcome.value, verdict.reason, fetched.final_url)
        return self._article(entry, page, fetched)

    def _article(self, entry: FeedEntry, page: ExtractedPage, fetched: FetchResult) -> CleanedArticle:
        sources: dict[str, str] = {}

        def pick(name: str, from_page: Any, from_feed: Any) -> Any:
            if from_page:
                sources[name] = f"page {getattr(page.methods, name, 'extractor')}"
                return from_page
            if from_feed:
                sources[name] = f"feed {entry.provenance.get(name, entry.found_in.value)}"
                return from_feed
            return None

        page_published = page.published_at or (
            datetime.combine(page.published_on, datetime.min.time(), tzinfo=UTC) if page.published_on else None
        )
        fetched_at = fetched.timings.started_at
        trusted = trusted_publication(
            page_published, entry.published_at, fetched_at, future_tolerance_s=self._config.future_date_tolerance_s
        )
        flags = list(trusted.flags)
        if trusted.page and trusted.feed:
            gap = abs(trusted.page - trusted.feed)
            if gap > timedelta(seconds=self._config.date_disagreement_s):
                flags.append("feed_and_page_dates_disagree")
        published = pick("published", trusted.page, trusted.feed)
        if published is None and trusted.fallback:
            published, sources["published"] = fetched_at, trusted.fallback
        if sources.get("published", "").startswith("feed") and AMBIGUOUS_DAY_MONTH in entry.provenance.get(
            "published_at", ""
        ):
            flags.append("published_at_day_month_ambiguous")
        canonical = canonicalize_url(fetched.final_url) if fetched.redirects else entry.canonical_url
        return CleanedArticle(
            article_id=article_id_for_url(canonical),
            canonical_url=canonical,
            title=pick("title", page.title, entry.title) or canonical,
            body=page.text,
            summary=pick("description", page.description, entry.summary),
            authors=list(pick("authors", list(page.authors), entry.authors) or []),
            tags=list(dict.fromkeys([*(pick("topics", [*page.categories, *page.tags], entry.tags) or [])])),
            language=_language(pick("language", page.language, entry.language)),
            published_at=published,
            fetched_at=fetched_at,
            source=SourceRef(kind=_source_kind(entry.found_in), name=entry.source_name, url=entry.feed_url),
            image_url=page.image,
            feed_item=FeedItem(
                feed_url=entry.feed_url,
                feed_title=entry.feed_title,
                entry_id=entry.entry_id,
                title=entry.title,
                categories=entry.tags,
                published_at=entry.published_at,
            ),
            field_sources=sources,
            flags=flags,
        )

    def _dead_letter(self, entry: FeedEntry, stage: str, outcome: str, detail: str, url: str) -> DeadLetter:
        return DeadLetter(
            stage=stage,
            error_type=outcome,
            error=f"{url}: {detail}",
            occurred_at=utc_now(),
            source_name=entry.source_name,
            source_url=url,
        )


def _language(code: str | None) -> str | None:
    """Keep a declared language only in the contract's form (e.g. 'en', 'pt-BR')."""
    if not code:
        return None
    primary, _, region = code.replace("_", "-").partition("-")
    primary = primary.lower()
    if not primary.isalpha() or not 2 <= len(primary) <= 3:
        return None
    return f"{primary}-{region}" if region.isalnum() and 2 <= len(region) <= 8 else primary


def _source_kind(found_in: FeedKind) -> SourceKind:
    return SourceKind.SITEMAP if found_in in (FeedKind.SITEMAP, FeedKind.NEWS_SITEMAP) else SourceKind.FEED


class FetchWorker:
    """One member of the fetch-worker consumer group."""

    def __init__(
        self,
        config: IngestConfig,
        fetcher: PageFetcher,
        publisher: KafkaPublisher,
        on_outcome: Callable[[str, str], None] | None = None,
    ) -> None:
        self._config = config
        self._fetcher = fetcher
        self._publisher = publisher
        self.counts = OutcomeCounts(on_add=on_outcome)
        self._consumer = KafkaConsumer(
            **config.consumer_config,
            group_id=config.fetch_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=20,
            # A page fetch may wait out politeness delays and retries; keep the group membership.
            max_poll_interval_ms=600_000,
        )
        self._consumer.subscribe([config.fetch_topic])

    def run(self, stop: threading.Event, *, done: Callable[[], bool] | None = None) -> OutcomeCounts:
        while not stop.is_set():
            polled = self._consumer.poll(timeout_ms=500)
            if not polled:
                if done is not None and done():
                    break
                continue
            offsets = {}
            for partition, messages in polled.items():
                for message in messages:
                    self._handle(message.value, message.key)
                    offsets[partition] = OffsetAndMetadata(message.offset + 1, "", -1)
            self._publisher.flush()
            self._consumer.commit(offsets)
        return self.counts

    def _handle(self, value: bytes | None, key: bytes | None) -> None:
        try:
            entry = decode(value, FeedEntry)
        except RecordDecodeError as error:
            self.counts.add("(undecodable task)", "invalid_task")
            self._publisher.publish_dead_letter(
                DeadLetter(
                    stage="fetch",
                    error_type="invalid_task",
                    error=str(error),
                    occurred_at=utc_now(),
                    topic=self._config.fetch_topic,
                    key=key.decode("utf-8", "replace") if key else None,
                    original=value,
                )
            )
            return
        result = self._fetcher.process(entry)
        if isinstance(result, CleanedArticle):
            self.counts.add(entry.source_name, Outcome.OK.value)
            self._publisher.publish_article(result)
        else:
            self.counts.add(entry.source_name, result.error_type)
            log.info("page not published", extra={"url": result.source_url, "outcome": result.error_type})
            self._publisher.publish_dead_letter(result)

    def close(self) -> None:
        self._consumer.close()


class TasksDrained:
    """Has the fetch group committed every task queued up to now? (``ingest --once``)"""

    def __init__(self, consumer_config: Mapping[str, Any], topic: str, group: str) -> None:
        self._probe = KafkaConsumer(**consumer_config, group_id=group, enable_auto_commit=False)
        partitions = [TopicPartition(topic, p) for p in sorted(self._probe.partitions_for_topic(topic) or [])]
        self.targets: dict[TopicPartition, int] = dict(self._probe.end_offsets(partitions))

    def __call__(self) -> bool:
        return all((self._probe.committed(p) or 0) >= end for p, end in self.targets.items())

    def close(self) -> None:
        self._probe.close()


@dataclass
class PollSchedule:
    """When each source is next due; intervals adapt to how often a source changes."""

    sources: tuple[SourceConfig, ...]
    due_at: dict[str, float] = field(default_factory=dict)
    interval_s: dict[str, float] = field(default_factory=dict)

    def due(self, now: float) -> list[SourceConfig]:
        return [s for s in self.sources if s.enabled and self.due_at.get(s.name, 0.0) <= now]

    def record(self, source: SourceConfig, report: PollReport, now: float) -> None:
        current = self.interval_s.get(source.name, source.min_poll_interval_s)
        # Halve the wait after a change, stretch it by half after a quiet poll, within bounds.
        adapted = current / 2 if report.entries_queued else current * 1.5
        interval = min(source.max_poll_interval_s, max(source.min_poll_interval_s, adapted))
        self.interval_s[source.name] = interval
        self.due_at[source.name] = now + interval

    def next_due(self) -> float:
        return min((self.due_at.get(s.name, 0.0) for s in self.sources if s.enabled), default=float("inf"))


def fetch_worker_process(
    config: IngestConfig,
    fetch_settings: Any,
    stop: Any,
    until_drained: bool,
    on_outcome: Callable[[str, str], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Entry point of one fetch-worker process (or of the main process with one worker).

    Everything it needs arrives as picklable arguments; it builds its own HTTP client,
    archive and Kafka clients, so workers share nothing but the topics.
    """
    http = HttpClient(fetch_settings)
    archive = PageArchive(config.archive_dir, max_file_bytes=config.archive_max_file_bytes)
    drained = TasksDrained(config.consumer_config, config.fetch_topic, config.fetch_group) if until_drained else None
    try:
        with config.publisher() as publisher:
            worker = FetchWorker(config, PageFetcher(config, http, archive), publisher, on_outcome)
            try:
                counts = worker.run(stop, done=drained)
            finally:
                worker.close()
    finally:
        if drained is not None:
            drained.close()
        archive.close()
        http.close()
    return {source: dict(counter) for source, counter in counts.by_source.items()}
