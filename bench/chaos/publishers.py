"""The chaos benchmark's publishers: one loopback HTTP server per host, each with a feed or a
sitemap listing real-looking article pages, some of which fail for a while before they answer.

Every host is its own address (127.0.0.2, 127.0.0.3, ...: all of 127.0.0.0/8 is loopback),
because politeness, robots.txt and Retry-After are per host. Article pages are built from
the generated corpus (real seed paragraphs, one unique body each), so extraction accepts
them as articles. A page behind a transient failure answers 429 with Retry-After, 503, a
read timeout or a connection reset a scripted number of times, then the article.

What a benchmark must know about retries is measured here, at the servers: how often each
URL was asked for, which reply each request got, and how long after a 429 the next request
for that URL came. This module never decides whether the service behaved; it only serves
and records.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from html import escape
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from connectors.seeds import split_seed_text
from newswire.testing.corpus import generated_seed_texts
from newswire.testing.http_server import LoopbackServer, RecordedRequest, Reply
from schemas import article_id_for_url, canonicalize_url

PAGE_PREFIX = "/news/"
HTML = {"Content-Type": "text/html; charset=utf-8"}
ROBOTS = Reply(200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n")


class Fault(StrEnum):
    """How a page fails before it answers."""

    RATE_LIMITED = "429 + Retry-After"
    UNAVAILABLE = "503"
    TIMEOUT = "timeout"
    RESET = "connection reset"


# Their mix among the pages behind a failure: 429 is what publishers answer crawlers most.
_FAULT_CYCLE = (Fault.RATE_LIMITED, Fault.UNAVAILABLE, Fault.RESET, Fault.RATE_LIMITED, Fault.TIMEOUT, Fault.RESET)


@dataclass(frozen=True)
class Page:
    host: int
    url: str
    article_id: str
    title: str
    fault: Fault | None = None
    # How many failing answers come before the article.
    failures: int = 0


@dataclass
class Host:
    server: LoopbackServer
    pages: list[Page] = field(default_factory=list)
    feed_path: str = ""
    kind: str = "feed"

    @property
    def name(self) -> str:
        return self.server.host


@dataclass(frozen=True)
class HostFigures:
    """What one host's server saw: requests, failures it served, re-requests, Retry-After kept."""

    host: str
    page_requests: int
    pages_requested: int
    failures_served: int
    retries: int
    retry_after_given: int
    retry_after_honoured: int
    retry_after_early: int
    retry_after_never_retried: int


def article_page(url: str, title: str, body: str, published: datetime) -> bytes:
    """An article page as a news site serves it: head metadata, navigation, one <article>, footer."""
    stamp = published.isoformat().replace("+00:00", "Z")
    paragraphs = "\n".join(f"<p>{escape(p)}</p>" for p in body.split("\n\n") if p.strip())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | Loopback Herald</title>
<link rel="canonical" href="{escape(url)}">
<meta property="og:title" content="{escape(title)}">
<meta property="og:type" content="article">
<meta property="article:published_time" content="{stamp}">
<meta name="author" content="Staff Reporter">
</head><body>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/business">Business</a></nav></header>
<main><article><h1>{escape(title)}</h1><p class="byline">By Staff Reporter</p><time datetime="{stamp}">{stamp}</time>
{paragraphs}
</article></main>
<footer><p>Copyright 2026 Loopback Herald. All rights reserved.</p></footer>
</body></html>""".encode()


def _rss(host: Host, published: dict[str, datetime]) -> bytes:
    items = "\n".join(
        f"<item><title>{xml_escape(p.title)}</title><link>{xml_escape(p.url)}</link>"
        f'<guid isPermaLink="true">{xml_escape(p.url)}</guid>'
        f"<pubDate>{format_datetime(published[p.url])}</pubDate></item>"
        for p in host.pages
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{host.name} news</title><link>{host.server.origin}/</link><description>Latest</description>\n"
        f"{items}\n</channel></rss>"
    ).encode()


def _sitemap(host: Host, published: dict[str, datetime]) -> bytes:
    urls = "\n".join(
        f"<url><loc>{xml_escape(p.url)}</loc><lastmod>{published[p.url].date().isoformat()}</lastmod></url>"
        for p in host.pages
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{urls}\n</urlset>'
    ).encode()


def _failing_replies(fault: Fault, failures: int, number: int, timeout_delay_s: float) -> list[Reply]:
    if fault is Fault.RATE_LIMITED:
        # 1 or 2 s: long enough to measure at the server, short enough for the run.
        return [Reply(429, {"Retry-After": str(1 + number % 2), "Content-Type": "text/plain"}, b"slow down")] * failures
    if fault is Fault.UNAVAILABLE:
        return [Reply(503, {"Content-Type": "text/plain"}, b"overloaded")] * failures
    if fault is Fault.TIMEOUT:
        return [Reply(503, delay_s=timeout_delay_s)] * failures
    return [Reply(reset=True)] * failures


class Publishers:
    """``hosts`` loopback publishers serving ``articles`` pages between them; start with ``with``."""

    def __init__(
        self,
        articles: int,
        hosts: int,
        *,
        transient_share: float,
        failing_feeds: int,
        timeout_delay_s: float,
        seed: int,
    ) -> None:
        if hosts < 1 or hosts > 250:
            raise ValueError(f"hosts must be 1..250 (127.0.0.2 ... 127.0.0.251), not {hosts}")
        if articles < hosts:
            raise ValueError(f"{articles} articles cannot fill {hosts} hosts")
        self._stack = ExitStack()
        self.hosts = [Host(LoopbackServer(f"127.0.0.{2 + number}")) for number in range(hosts)]
        self.pages: list[Page] = []
        rng = random.Random(seed)
        faulty_every = round(1 / transient_share) if transient_share > 0 else 0
        now = datetime.now(UTC).replace(microsecond=0)
        published: dict[str, datetime] = {}
        for number, (_, text) in enumerate(generated_seed_texts(articles, seed=seed)):
            host = self.hosts[number % hosts]
            url = f"{host.server.origin}{PAGE_PREFIX}{number:06d}.html"
            title, body = split_seed_text(text)
            fault, failures = None, 0
            # Spread evenly, never the first pages of a host, so every host starts clean.
            if faulty_every and number >= hosts and number % faulty_every == faulty_every // 2:
                fault = _FAULT_CYCLE[(number // faulty_every) % len(_FAULT_CYCLE)]
                failures = 1 + (number // faulty_every) % 3
            page = Page(number % hosts, url, article_id_for_url(canonicalize_url(url)), title, fault, failures)
            published[url] = now - timedelta(minutes=rng.randrange(1, 60 * 24))
            html = Reply(200, HTML, article_page(url, title, body, published[url]))
            replies = [*_failing_replies(fault, failures, number, timeout_delay_s), html] if fault else [html]
            host.server.route(url.removeprefix(host.server.origin), *replies)
            host.pages.append(page)
            self.pages.append(page)
        for number, host in enumerate(self.hosts):
            host.server.route("/robots.txt", ROBOTS)
            host.kind = "feed" if number % 2 == 0 else "sitemap"
            host.feed_path = "/feed.xml" if host.kind == "feed" else "/sitemap.xml"
            content_type = "application/rss+xml" if host.kind == "feed" else "application/xml"
            document = _rss(host, published) if host.kind == "feed" else _sitemap(host, published)
            etag = f'"{host.name}-1"'
            # A few feeds are down for their first polls: a poll failure must be retried too.
            down = [Reply(503, {"Content-Type": "text/plain"}, b"feed down")] * 2 if number < failing_feeds else []
            host.server.route(
                host.feed_path,
                *down,
                Reply(200, {"Content-Type": content_type, "ETag": etag}, document),
                Reply(304, {"ETag": etag}),
            )

    def __enter__(self) -> Publishers:
        for host in self.hosts:
            self._stack.enter_context(host.server)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def sources_yaml(self, path: Path) -> Path:
        lines = ["sources:"]
        for number, host in enumerate(self.hosts):
            lines += [
                f"  - name: chaos-host-{number:02d}",
                f"    type: {host.kind}",
                f"    url: {host.server.url(host.feed_path)}",
                "    language: en",
                "    min_poll_interval_s: 10",
                "    max_poll_interval_s: 30",
            ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def page_requests(self) -> Iterator[tuple[Host, RecordedRequest]]:
        for host in self.hosts:
            for request in host.server.requests:
                if request.path.startswith(PAGE_PREFIX):
                    yield host, request

    def busiest_host(self, within_s: float, now: float) -> Host:
        """The host whose pages were asked for most in the last ``within_s`` seconds (first host if none)."""
        recent = Counter(host.name for host, r in self.page_requests() if r.at >= now - within_s)
        name = recent.most_common(1)[0][0] if recent else self.hosts[0].name
        return next(host for host in self.hosts if host.name == name)

    def behind_a_failure(self) -> set[str]:
        """Article ids of the pages that answered at least one request with a failure."""
        by_url = {page.url.removeprefix(self.hosts[page.host].server.origin): page for page in self.pages}
        failed: set[str] = set()
        for host, request in self.page_requests():
            if request.reply is not None and _is_failure(request.reply):
                page = by_url.get(request.path)
                if page is not None and self.hosts[page.host] is host:
                    failed.add(page.article_id)
        return failed

    def figures(self) -> list[HostFigures]:
        rows = []
        for host in self.hosts:
            requests = [r for r in host.server.requests if r.path.startswith(PAGE_PREFIX)]
            by_path: dict[str, list[RecordedRequest]] = {}
            for request in sorted(requests, key=lambda r: r.at):
                by_path.setdefault(request.path, []).append(request)
            given = honoured = early = never = 0
            for series in by_path.values():
                for earlier, later in zip(series, [*series[1:], None], strict=True):
                    reply = earlier.reply
                    if reply is None or reply.status != 429 or "Retry-After" not in reply.headers:
                        continue
                    given += 1
                    wait = float(reply.headers["Retry-After"])
                    if later is None:
                        never += 1
                    elif later.at - earlier.at >= wait - 0.02:  # the server's clock granularity
                        honoured += 1
                    else:
                        early += 1
            rows.append(
                HostFigures(
                    host=host.name,
                    page_requests=len(requests),
                    pages_requested=len(by_path),
                    failures_served=sum(1 for r in requests if r.reply is not None and _is_failure(r.reply)),
                    retries=len(requests) - len(by_path),
                    retry_after_given=given,
                    retry_after_honoured=honoured,
                    retry_after_early=early,
                    retry_after_never_retried=never,
                )
            )
        return rows


def _is_failure(reply: Reply) -> bool:
    return reply.reset or reply.delay_s > 0 or reply.status in (429, 503)
