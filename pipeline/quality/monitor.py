"""The quality monitor: follows the enriched and dead-letter topics and keeps every source's
drift tracker (``pipeline.quality.drift``) in a SQLite file, so a restart resumes its
windows and baselines instead of learning each source again.

Each topic is read by its own ``schemas.consumer.RecordConsumer`` (offsets committed after
the page is judged and the source's state saved, so a crash re-judges at most one poll of
pages). The monitor never changes a record or a topic; it only reads and judges.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline.quality.drift import DriftRule, Page, SourceQuality, SourceTracker
from schemas import DeadLetter, EnrichedArticle
from schemas.consumer import RecordConsumer

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS source_quality (
    source TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


def page_of_article(article: EnrichedArticle) -> Page:
    present = set()
    # The cleaner falls back to the URL when a page has no title: that is no title.
    if article.title.strip() and article.title != article.canonical_url:
        present.add("title")
    if article.published_at is not None:
        present.add("published_at")
    if article.authors:
        present.add("author")
    if article.language or article.detected_language:
        present.add("language")
    return Page(at=article.fetched_at, fields=frozenset(present), body_chars=len(article.body))


def page_of_dead_letter(dead_letter: DeadLetter) -> Page:
    return Page(at=dead_letter.occurred_at, outcome=dead_letter.error_type)


class QualityStore:
    """Every source's tracker, persisted as one JSON row per source."""

    def __init__(self, path: Path, rule: DriftRule) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._rule = rule
        self._lock = threading.Lock()
        self._trackers = {
            source: SourceTracker.from_json(source, rule, json.loads(state))
            for source, state in self._db.execute("SELECT source, state FROM source_quality")
        }

    def observe(self, source: str, page: Page) -> SourceQuality:
        with self._lock:
            tracker = self._trackers.get(source)
            if tracker is None:
                tracker = self._trackers[source] = SourceTracker(source, self._rule)
            was = set(tracker.drifting)
            quality = tracker.observe(page)
            now = set(tracker.drifting)
            with self._db:
                self._db.execute(
                    "INSERT INTO source_quality (source, state) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET"
                    " state = excluded.state, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                    (source, json.dumps(tracker.to_json())),
                )
        for name in sorted(now - was):
            log.warning("source drifting", extra={"source": source, "field": name, "since": page.at.isoformat()})
        for name in sorted(was - now):
            log.info("source field restored", extra={"source": source, "field": name})
        return quality

    def statuses(self) -> list[SourceQuality]:
        with self._lock:
            return [self._trackers[s].judge() for s in sorted(self._trackers)]

    def close(self) -> None:
        self._db.close()


def read_statuses(path: Path, rule: DriftRule) -> list[SourceQuality]:
    """The sources' quality as last saved, for readers in another process (the console)."""
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT source, state FROM source_quality ORDER BY source").fetchall()
    return [SourceTracker.from_json(source, rule, json.loads(state)).judge() for source, state in rows]


class QualityMonitor:
    """Judges every article and dead letter of the two topics as they arrive, in two threads."""

    def __init__(
        self,
        store: QualityStore,
        *,
        consumer_config: Mapping[str, Any],
        enriched_topic: str,
        dead_letter_topic: str,
        group_id: str,
        on_change: Callable[[list[SourceQuality]], None] | None = None,
    ) -> None:
        self._store = store
        self._on_change = on_change
        config = dict(consumer_config)
        bootstrap = config.pop("bootstrap_servers")
        self._articles: RecordConsumer[EnrichedArticle] = RecordConsumer(
            enriched_topic, EnrichedArticle, group_id=group_id, bootstrap_servers=bootstrap, **config
        )
        self._dead_letters: RecordConsumer[DeadLetter] = RecordConsumer(
            dead_letter_topic, DeadLetter, group_id=group_id, bootstrap_servers=bootstrap, **config
        )

    def article(self, article: EnrichedArticle) -> None:
        self._store.observe(article.source.name, page_of_article(article))
        self._changed()

    def dead_letter(self, dead_letter: DeadLetter) -> None:
        # Only pages of a known source say anything about that source's layout.
        if dead_letter.source_name and dead_letter.stage in ("fetch", "extract"):
            self._store.observe(dead_letter.source_name, page_of_dead_letter(dead_letter))
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self._store.statuses())

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._articles.run, args=(self.article,), kwargs={"stop": stop}, daemon=True),
            threading.Thread(
                target=self._dead_letters.run, args=(self.dead_letter,), kwargs={"stop": stop}, daemon=True
            ),
        ]
        for thread in threads:
            thread.start()
        return threads

    def close(self) -> None:
        self._articles.close()
        self._dead_letters.close()
