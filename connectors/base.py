"""The contracts every connector implements, and the one loop that publishes a finite source.

A finite ``Source`` (seed files) yields ``CleanedArticle``s and ``Rejected`` inputs; it never
talks to Kafka. The loop in ``run_source`` hands both to the publisher (articles to the raw
topic, rejections to the dead-letter topic), paces them, and shows progress.

Live sources have two contracts, after Bytewax's ``SimplePollingSource`` and its
``Retry(timeout)``: a ``PollingSource`` returns the entries it has now (``Polled``) or asks
to be tried again (``Retry``); a ``PageFetcher`` turns one entry into a final outcome (an
article, or a ``Rejected`` saying why not) or a ``Retry``. Neither blocks on a schedule,
sleeps or publishes: the ingest service (``connectors.ingest``) owns when to call them again,
persists that, and is the only one that talks to Kafka.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from tqdm import tqdm

from connectors.publisher import Published
from schemas import CleanedArticle, DeadLetter
from schemas.feed_entry import FeedEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejected:
    """An input a source could not turn into an article, and why."""

    stage: str
    error_type: str
    reason: str
    source_name: str
    source_url: str | None = None
    original: bytes | None = None

    def to_dead_letter(
        self, *, topic: str | None = None, partition: int | None = None, offset: int | None = None
    ) -> DeadLetter:
        """The dead letter for this input; with the coordinates of the Kafka record it came from
        (a fetch task), when it came from one."""
        return DeadLetter.of(
            stage=self.stage,
            error_type=self.error_type,
            error=self.reason,
            source_name=self.source_name,
            source_url=self.source_url,
            original=self.original,
            topic=topic,
            partition=partition,
            offset=offset,
        )


SourceItem = CleanedArticle | Rejected


@dataclass(frozen=True)
class Retry:
    """A transient failure: try again later. ``after_s`` is what the server asked for
    (Retry-After), when it said; otherwise the caller's backoff decides."""

    error_type: str
    reason: str
    after_s: float | None = None
    # False when nothing was tried (the host is held back for a while): it costs no attempt.
    attempted: bool = True


@dataclass(frozen=True)
class Polled:
    """What one poll found: its entries, final problems to dead-letter (a 404 feed, an unreadable
    document, a child sitemap that failed), and the least wait before the next poll the
    publisher asked for (RSS ``<ttl>``, ``Cache-Control: max-age``)."""

    outcome: str
    detail: str
    entries: tuple[FeedEntry, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    min_interval_s: float | None = None


class PollingSource(Protocol):
    """One live feed or sitemap: ``poll()`` never raises for a network or document problem."""

    name: str

    def poll(self) -> Polled | Retry: ...

    def queued(self) -> None:
        """The last poll's entries are durably queued: only now may the source remember what it
        read (validators for the next conditional GET), or an outage in between would lose them."""


PageOutcome = CleanedArticle | Rejected | Retry


class PageFetcher(Protocol):
    """Turns one entry into its article, a final ``Rejected``, or a ``Retry``."""

    def fetch(self, entry: FeedEntry) -> PageOutcome: ...


class Source(ABC):
    """One configured source of articles."""

    name: str

    @abstractmethod
    def items(self) -> Iterator[SourceItem]:
        """Yield every article (or rejection) the source has now, then return."""

    def size_hint(self) -> int | None:
        """How many items ``items()`` will yield, when known cheaply (for progress bars)."""
        return None


class Publisher(Protocol):
    def publish_article(self, article: CleanedArticle) -> Published: ...

    def publish_dead_letter(self, dead_letter: DeadLetter) -> None: ...

    def flush(self) -> None: ...


@dataclass
class RunTotals:
    published: int = 0
    rejected: int = 0
    rejections: list[Rejected] = field(default_factory=list)


class Pacer:
    """Spaces calls to at most ``rate`` per second (0 = unpaced) without drifting."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()

    def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
        self._next = max(self._next, now) + self._interval


def run_source(
    source: Source,
    publisher: Publisher,
    *,
    rate: float = 0.0,
    show_progress: bool = True,
    stop: threading.Event | None = None,
) -> RunTotals:
    """Publish one pass over ``source`` (or until ``stop`` is set); returns the totals."""
    totals = RunTotals()
    pacer = Pacer(rate)
    with tqdm(
        total=source.size_hint(), desc=f"replay {source.name}", unit="article", disable=not show_progress
    ) as progress:
        for item in source.items():
            if stop is not None and stop.is_set():
                break
            pacer.wait()
            if isinstance(item, Rejected):
                log.warning(
                    "input rejected",
                    extra={"source": item.source_name, "reason": item.reason, "error_type": item.error_type},
                )
                publisher.publish_dead_letter(item.to_dead_letter())
                totals.rejected += 1
                totals.rejections.append(item)
            elif publisher.publish_article(item) is Published.TOO_LARGE:
                # The publisher refused it where it entered and sent its dead letter.
                totals.rejected += 1
                totals.rejections.append(
                    Rejected(
                        stage="publish",
                        error_type="too_large",
                        reason=f"article {item.article_id} is larger than limits.max_article_bytes (dead-lettered)",
                        source_name=item.source.name,
                    )
                )
            else:
                totals.published += 1
            progress.update(1)
    publisher.flush()
    return totals
