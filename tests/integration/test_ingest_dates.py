"""Publication dates a fetched article gets, through the real page fetcher against a loopback
server: a feed date decades after the fetch is not trusted (issue 14, item 2), and a feed
date whose day and month nothing settled is flagged as a doubt (item 1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.http import HttpClient
from connectors.http.limits import FetchSettings
from connectors.ingest.fetcher import PageFetcher
from connectors.page_archive import PageArchive
from newswire import wiring
from newswire.settings import IngestSettings, Settings
from newswire.testing.http_server import LoopbackServer, Reply
from schemas import CleanedArticle
from schemas.feed_entry import FeedEntry, FeedKind

pytestmark = pytest.mark.integration

HTML = {"content-type": "text/html; charset=utf-8"}
PARAGRAPHS = "".join(
    f"<p>The council met on Tuesday to discuss paragraph {i} of the plan for the river bridge, "
    "and members asked the engineers to report again before the vote next month.</p>"
    for i in range(8)
)


def _page(published: str | None) -> bytes:
    meta = f'<meta property="article:published_time" content="{published}">' if published else ""
    return (
        f"<html><head><title>Council backs the bridge</title>{meta}</head><body><article>"
        f"<h1>Council backs the bridge</h1>{PARAGRAPHS}</article></body></html>"
    ).encode()


@pytest.fixture
def fetcher(tmp_path: Path) -> Iterator[PageFetcher]:
    settings = Settings(
        fetch=FetchSettings(allow_addresses=["127.0.0.1/32"], per_host_interval_s=0.01),
        ingest=IngestSettings(state_file=tmp_path / "state.sqlite3", archive_dir=tmp_path / "archive"),
    )
    config = wiring.ingest_config(settings)
    http = HttpClient(settings.fetch)
    archive = PageArchive(config.archive_dir, max_file_bytes=config.archive_max_file_bytes)
    try:
        yield PageFetcher(config, http, archive)
    finally:
        archive.close()
        http.close()


def _fetched(fetcher: PageFetcher, server: LoopbackServer, path: str, **entry: Any) -> CleanedArticle:
    """The article fetched for a feed entry carrying ``entry``'s fields (published_at, provenance)."""
    outcome = fetcher.fetch(
        FeedEntry(
            canonical_url=server.url(path),
            url=server.url(path),
            feed_url=server.url("/feed"),
            source_name="county",
            found_in=FeedKind.RSS,
            **entry,
        )
    )
    assert isinstance(outcome, CleanedArticle), outcome
    return outcome


def test_a_feed_date_in_2099_gives_way_to_the_page_date_or_the_fetch_time(fetcher: PageFetcher) -> None:
    far = datetime(2099, 1, 1, tzinfo=UTC)
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        server.route("/dated", Reply(200, HTML, _page("2026-11-30T08:00:00Z")))
        server.route("/undated", Reply(200, HTML, _page(None)))
        dated = _fetched(fetcher, server, "/dated", published_at=far)
        undated = _fetched(fetcher, server, "/undated", published_at=far)
    assert dated.published_at is not None and dated.published_at.date() == datetime(2026, 11, 30).date()
    assert "published_at_in_future" in dated.flags and dated.field_sources["published"].startswith("page")
    assert undated.published_at == undated.fetched_at
    assert "published_at_in_future" in undated.flags
    assert (
        undated.field_sources["published"].startswith("fetch time")
        and "2099-01-01" in undated.field_sources["published"]
    )
    assert undated.feed_item is not None and undated.feed_item.published_at == far, "what the feed said is kept"


def test_a_feed_date_read_day_first_for_want_of_evidence_is_flagged(fetcher: PageFetcher) -> None:
    when = datetime.now(UTC) - timedelta(days=2)
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        server.route("/undated", Reply(200, HTML, _page(None)))
        doubtful = _fetched(
            fetcher,
            server,
            "/undated",
            published_at=when,
            provenance={"published_at": "published (dateparser; day and month ambiguous: read day first)"},
        )
    assert doubtful.published_at == when
    assert "published_at_day_month_ambiguous" in doubtful.flags
