"""Live connectors end to end: real feeds and real pages on a loopback server -> real Kafka."""

from __future__ import annotations

import functools
import gzip
import itertools
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.feed_document import parse_feed_document
from newswire.testing.http_server import LoopbackServer, Reply
from schemas import CleanedArticle, DeadLetter, decode
from tests.integration.harness import NewswireRun

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[1] / "data"
FEEDS = {  # source name -> (file, content type)
    "nbc-rss": ("feed-rs/rss_2.0_nbcny.xml", "application/rss+xml"),
    "npr-jsonfeed": ("trafilatura/feed.json", "application/feed+json"),
    "nyt-news-sitemap": ("advertools/news_sitemap.xml", "application/xml"),
    "blog-rss": ("newsboat/rss.xml", "application/rss+xml"),
}
# Also matches JSON's escaped form, https:\/\/host.
_ABSOLUTE_URL = re.compile(rb"https?:(?:\\?/){2}([A-Za-z0-9.-]+)")


def _to_origin(match: re.Match[bytes], *, hosts: set[str], origin: bytes) -> bytes:
    """A link to one of the feeds' own hosts, pointed at the loopback server instead."""
    return origin if match.group(1).decode().lower() in hosts else match.group(0)


def _serve_feeds(server: LoopbackServer) -> tuple[dict[str, str], int]:
    """Serve each real feed with its entries' hosts moved onto the loopback server, and a
    real article page behind every entry. Returns source -> feed URL, and the entry count."""
    pages = sorted((DATA / "ingest" / "pages").glob("*.html.gz"))
    origin = server.origin.encode()
    feed_urls = {}
    entries = 0
    for name, (file, content_type) in FEEDS.items():
        original = (DATA / "feeds" / file).read_bytes()
        hosts = {
            e.canonical_url.split("/")[2]
            for e in parse_feed_document(
                original, url="https://feeds.example/", content_type=content_type, source_name=name
            ).entries
        }
        body = _ABSOLUTE_URL.sub(functools.partial(_to_origin, hosts=hosts, origin=origin), original)
        path = f"/feeds/{name}"
        server.route(
            path,
            Reply(200, {"Content-Type": content_type, "ETag": f'"{name}-v1"'}, body),
            Reply(304, {"ETag": f'"{name}-v1"'}),
        )
        feed_urls[name] = server.url(path)
        parsed = parse_feed_document(body, url=feed_urls[name], content_type=content_type, source_name=name)
        for number, entry in enumerate(parsed.entries):
            page = gzip.decompress(pages[(entries + number) % len(pages)].read_bytes())
            entry_path = entry.canonical_url.removeprefix(server.origin)
            server.route(entry_path, Reply(200, {"Content-Type": "text/html; charset=utf-8"}, page))
        entries += len(parsed.entries)
    return feed_urls, entries


def _sources_file(path: Path, feed_urls: dict[str, str]) -> Path:
    lines = ["sources:"]
    for name, url in feed_urls.items():
        kind = "sitemap" if "sitemap" in name else "feed"
        lines += [f"  - name: {name}", f"    type: {kind}", f"    url: {url}", "    min_poll_interval_s: 10"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ingest_run(newswire_run: NewswireRun, tmp_path: Path) -> NewswireRun:
    newswire_run.env.update(
        {
            "NEWSWIRE_FETCH__ALLOW_ADDRESSES": '["127.0.0.1/32"]',
            "NEWSWIRE_FETCH__PER_HOST_INTERVAL_S": "0.02",
            "NEWSWIRE_INGEST__STATE_FILE": str(tmp_path / "state" / "connectors.sqlite3"),
            "NEWSWIRE_INGEST__ARCHIVE_DIR": str(tmp_path / "archive"),
            "NEWSWIRE_INGEST__FETCH_GROUP": f"fetchers-{tmp_path.name}",
        }
    )
    return newswire_run


def test_every_feed_entry_becomes_one_article_and_a_second_pass_publishes_nothing(
    ingest_run: NewswireRun, tmp_path: Path
) -> None:
    with LoopbackServer() as server:
        feed_urls, entry_count = _serve_feeds(server)
        sources = _sources_file(tmp_path / "sources.yaml", feed_urls)
        first = ingest_run.command("ingest", "--once", "--sources", str(sources), timeout=600)
        articles = [decode(v, CleanedArticle) for _, v in ingest_run.topic_values(ingest_run.topics.raw)]
        dead = [decode(v, DeadLetter) for _, v in ingest_run.topic_values(ingest_run.topics.dead_letter)]
        assert not dead, [d.error for d in dead]
        assert len(articles) == entry_count, first.stdout
        assert Counter(a.canonical_url for a in articles).most_common(1)[0][1] == 1
        for article in articles:
            assert article.canonical_url and article.canonical_url.startswith(server.origin)
            assert article.body.strip() and article.title.strip()
            assert article.feed_item is not None and article.feed_item.feed_url in feed_urls.values()
            assert article.published_at is None or article.published_at.utcoffset() == timedelta(0)
        assert sum(a.published_at is not None for a in articles) == entry_count, "every entry here has a date"
        assert list((tmp_path / "archive").glob("pages-*.warc.gz")), "fetched pages are archived as WARC"

        ingest_run.command("ingest", "--once", "--sources", str(sources), timeout=300)
        assert len(ingest_run.topic_values(ingest_run.topics.raw)) == entry_count, "second pass published nothing"
        for name, url in feed_urls.items():
            requests = server.requests_for(url.removeprefix(server.origin))
            assert len(requests) == 2
            second = {k.lower(): v for k, v in requests[1].headers.items()}
            assert second.get("if-none-match") == f'"{name}-v1"', "the second poll is a conditional GET (304)"


@pytest.mark.parametrize("workers", [1, 2])
def test_one_host_is_never_fetched_faster_than_its_budget(
    ingest_run: NewswireRun, tmp_path: Path, workers: int
) -> None:
    interval = 0.25
    ingest_run.env["NEWSWIRE_FETCH__PER_HOST_INTERVAL_S"] = str(interval)
    with LoopbackServer() as server:
        feed_urls, _entry_count = _serve_feeds(server)
        sources = _sources_file(tmp_path / "sources.yaml", {"npr-jsonfeed": feed_urls["npr-jsonfeed"]})
        ingest_run.command("ingest", "--once", "--workers", str(workers), "--sources", str(sources), timeout=600)
        page_requests = sorted(r.at for r in server.requests if not r.path.startswith(("/feeds/", "/robots.txt")))
    assert len(page_requests) == 25
    gaps = [later - earlier for earlier, later in itertools.pairwise(page_requests)]
    # Measured at the server; a few ms of slack for the loopback round trip.
    assert min(gaps) >= interval - 0.02, f"fastest gap {min(gaps):.3f}s with {workers} worker(s)"


@pytest.mark.parametrize("workers", [1, 2])
def test_one_budget_per_host_covers_the_poller_the_fetchers_and_robots_txt(
    ingest_run: NewswireRun, tmp_path: Path, workers: int
) -> None:
    """Every request to the host (robots.txt, the feed poll, each page), whichever process makes it."""
    interval = 0.4
    ingest_run.env["NEWSWIRE_FETCH__PER_HOST_INTERVAL_S"] = str(interval)
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n"))
        feed_urls, _entry_count = _serve_feeds(server)
        sources = _sources_file(tmp_path / "sources.yaml", {"blog-rss": feed_urls["blog-rss"]})
        ingest_run.command("ingest", "--once", "--workers", str(workers), "--sources", str(sources), timeout=300)
        requests = sorted(server.requests, key=lambda r: r.at)
    assert len([r for r in requests if r.path == "/robots.txt"]) == 1, "one robots.txt cache for every process"
    assert requests[1].path == "/feeds/blog-rss" and len(requests) == 2 + 8
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    fastest = min(range(len(gaps)), key=gaps.__getitem__)
    assert gaps[fastest] >= interval - 0.02, (
        f"{requests[fastest + 1].path} followed {requests[fastest].path} after {gaps[fastest]:.3f}s "
        f"with {workers} worker(s)"
    )


def test_a_broken_source_does_not_stop_the_good_ones(ingest_run: NewswireRun, tmp_path: Path) -> None:
    with LoopbackServer() as server:
        feed_urls, _ = _serve_feeds(server)
        server.route(
            "/feeds/broken", Reply(200, {"Content-Type": "application/rss+xml"}, b"<rss><channel><item><title>x")
        )
        server.route("/feeds/gone", Reply(404))
        chosen = {
            "blog-rss": feed_urls["blog-rss"],
            "broken": server.url("/feeds/broken"),
            "gone": server.url("/feeds/gone"),
        }
        result = ingest_run.command("ingest", "--once", "--sources", str(_sources_file(tmp_path / "s.yaml", chosen)))
    articles = ingest_run.topic_values(ingest_run.topics.raw)
    dead = {
        d.source_name: d
        for d in (decode(v, DeadLetter) for _, v in ingest_run.topic_values(ingest_run.topics.dead_letter))
    }
    assert len(articles) == 8, result.stdout
    assert set(dead) == {"broken", "gone"}
    assert dead["gone"].error_type == "http_error" and "404" in dead["gone"].error
    assert dead["broken"].stage == "parse"
