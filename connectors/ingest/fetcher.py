"""The page fetcher: one fetch task (a ``FeedEntry``) in, one outcome out.

Fetches the page through the one HTTP layer, archives it as WARC, extracts it and judges
whether it is an article at all. The outcome follows the ``PageFetcher`` contract of
``connectors.base``: a ``CleanedArticle``; a final ``Rejected`` (not an article, blocked,
paywall, consent wall, 404/410, robots.txt disallows it); or a ``Retry`` for a transient
failure (timeout, connection error, DNS, 429, 5xx), carrying the server's Retry-After. An
exception inside extraction is our bug, not the page's: it ends ``internal_error`` with a
summary of the traceback, never "not an article".

It never publishes, never sleeps on a schedule and never retries across fetches: the
worker and the schedule do that.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import PageOutcome, Rejected, Retry
from connectors.cleaning.extract import ExtractedPage, extract_article_or_raise
from connectors.feed_dates import AMBIGUOUS_DAY_MONTH, trusted_publication
from connectors.http import FetchResult, HttpClient, Outcome
from connectors.ingest.config import IngestConfig
from connectors.page_archive import PageArchive
from connectors.page_verdicts import page_verdict
from schemas import CleanedArticle, FeedItem, SourceKind, SourceRef, article_id_for_url, canonicalize_url
from schemas.feed_entry import FeedEntry, FeedKind

log = logging.getLogger(__name__)

PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
# Frames of a traceback kept in an internal_error dead letter: enough to find the line.
_TRACEBACK_FRAMES = 4

Extractor = Callable[..., ExtractedPage]


class PageFetcher:
    """Turns one fetch task into an outcome; thread-compatible, one per worker."""

    def __init__(
        self,
        config: IngestConfig,
        http: HttpClient,
        archive: PageArchive,
        extract: Extractor = extract_article_or_raise,
    ) -> None:
        self._config = config
        self._http = http
        self._archive = archive
        self._extract = extract
        # The last fetch's result, for the worker's counts (bytes, politeness waits).
        self.last_fetch: FetchResult | None = None

    def fetch(self, entry: FeedEntry) -> PageOutcome:
        self.last_fetch = None
        held_back = host_held_back(self._http, entry.canonical_url, self._config.max_host_wait_s)
        if held_back is not None:
            return held_back
        fetched = self._http.fetch(entry.canonical_url, accept=PAGE_ACCEPT)
        self.last_fetch = fetched
        if not fetched.ok:
            detail = f"{fetched.final_url}: {fetched.detail or fetched.outcome.value}"
            if fetched.retryable:
                return Retry(fetched.outcome.value, detail, fetched.retry_after_s)
            return self._rejected(entry, "fetch", fetched.outcome.value, detail, fetched.final_url)
        self._archive.archive(fetched.final_url, fetched.status or 200, fetched.headers, fetched.body)
        media_type = fetched.content_type or "text/html"
        if fetched.text is None or not media_type.startswith(("text/html", "application/xhtml")):
            return self._rejected(
                entry,
                "extract",
                Outcome.NOT_AN_ARTICLE.value,
                f"{fetched.final_url}: not HTML ({fetched.content_type})",
                fetched.final_url,
            )
        try:
            page = self._extract(fetched.text, url=fetched.final_url)
            verdict = page_verdict(fetched.text, page, self._config.verdict_limits)
            if not verdict.is_article:
                return self._rejected(
                    entry, "extract", verdict.outcome.value, f"{fetched.final_url}: {verdict.reason}", fetched.final_url
                )
            return self._article(entry, page, fetched)
        except Exception as error:  # our bug on this page must not pass for the page's fault
            log.exception("extraction raised", extra={"url": fetched.final_url, "source": entry.source_name})
            return self._rejected(
                entry,
                "extract",
                Outcome.INTERNAL_ERROR.value,
                f"{fetched.final_url}: extraction raised {_summary(error)}",
                fetched.final_url,
            )

    def _rejected(self, entry: FeedEntry, stage: str, outcome: str, detail: str, url: str) -> Rejected:
        return Rejected(stage=stage, error_type=outcome, reason=detail, source_name=entry.source_name, source_url=url)

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
            source=SourceRef(kind=source_kind(entry.found_in), name=entry.source_name, url=entry.feed_url),
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


def host_held_back(http: HttpClient, url: str, max_wait_s: float) -> Retry | None:
    """A ``Retry`` at no attempt's cost when ``url``'s host is held back longer than ``max_wait_s``
    (a Retry-After another fetch was given, a long Crawl-delay): waiting here would hold up
    every other host behind this one."""
    wait = http.host_wait_s(url)
    if wait <= max_wait_s:
        return None
    return Retry(
        Outcome.RATE_LIMITED.value,
        f"{url}: its host is held back for another {wait:.0f}s (Retry-After, Crawl-delay or politeness), more than "
        f"ingest.max_host_wait_s={max_wait_s:g}s; rescheduled instead of waiting",
        after_s=wait,
        attempted=False,
    )


def _summary(error: BaseException) -> str:
    """``Type: message at file:line in function`` for the innermost frames: a dead letter's worth."""
    frames = traceback.extract_tb(error.__traceback__)[-_TRACEBACK_FRAMES:]
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in reversed(frames))
    return f"{type(error).__name__}: {error} (at {where})"


def _language(code: str | None) -> str | None:
    """Keep a declared language only in the contract's form (e.g. 'en', 'pt-BR')."""
    if not code:
        return None
    primary, _, region = code.replace("_", "-").partition("-")
    primary = primary.lower()
    if not primary.isalpha() or not 2 <= len(primary) <= 3:
        return None
    return f"{primary}-{region}" if region.isalnum() and 2 <= len(region) <= 8 else primary


def source_kind(found_in: FeedKind) -> SourceKind:
    """The article's kind of source, from the kind of document its entry was found in."""
    if found_in is FeedKind.PAGE:
        return SourceKind.PAGE
    if found_in in (FeedKind.SITEMAP, FeedKind.NEWS_SITEMAP):
        return SourceKind.SITEMAP
    return SourceKind.FEED
