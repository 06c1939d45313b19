"""A news publisher on the loopback HTTP server: an RSS feed and its article pages, whose page
template can change mid-run (the date or the body disappears) as real publishers' layouts do.

Pages are generated from the real seed text (``newswire.testing.corpus``), each with its own
body so none is a duplicate of another. The feed carries no dates of its own, so whatever the
pipeline knows of a publication time comes from the page.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from newswire.testing.corpus import generated_seed_texts
from newswire.testing.http_server import LoopbackServer, Reply


class Template(StrEnum):
    FULL = "full"  # title, author, language, publication time, body
    NO_DATE = "no_date"  # the publication time gone from the page
    NO_BODY = "no_body"  # the article text gone: only the page's chrome is left


@dataclass
class LoopbackPublisher:
    server: LoopbackServer
    name: str = "loopback-news"
    stories: list[tuple[str, str]] = field(default_factory=list)  # (url, title)
    _bodies: Iterator[tuple[str, str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._bodies = generated_seed_texts(100_000, seed=len(self.name))

    @property
    def feed_path(self) -> str:
        return f"/feeds/{self.name}.xml"

    @property
    def feed_url(self) -> str:
        return self.server.url(self.feed_path)

    def publish(
        self,
        count: int,
        template: Template = Template.FULL,
        *,
        feed_delay_s: float = 0.0,
        titles: Sequence[str] = (),
    ) -> list[str]:
        """``count`` new stories in ``template``, listed first in the feed; returns their URLs.
        ``feed_delay_s``: the next fetch of the feed waits that long before it is answered.
        ``titles``: the first stories' titles as given (e.g. hostile markup), not generated."""
        urls = []
        for position in range(count):
            number = len(self.stories)
            _, text = next(self._bodies)
            title, _, body = text.partition("\n\n")
            title = titles[position] if position < len(titles) else f"{title} ({self.name} story {number})"
            path = f"/news/{self.name}/story-{number}"
            self.server.route(
                path, Reply(200, {"Content-Type": "text/html; charset=utf-8"}, page(title, body, template))
            )
            self.stories.append((self.server.url(path), title))
            urls.append(self.server.url(path))
        feed = Reply(200, {"Content-Type": "application/rss+xml"}, self.feed())
        if feed_delay_s:
            self.server.route(self.feed_path, dataclasses.replace(feed, delay_s=feed_delay_s), feed)
        else:
            self.server.route(self.feed_path, feed)
        return urls

    def feed(self) -> bytes:
        items = "".join(
            f"<item><title>{html.escape(title)}</title><link>{html.escape(url)}</link><guid>{html.escape(url)}</guid></item>"
            for url, title in reversed(self.stories)
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{html.escape(self.name)}</title><link>{html.escape(self.server.origin)}</link>"
            f"<description>Stories of {html.escape(self.name)}</description>{items}</channel></rss>"
        ).encode()

    def sources_yaml(self, *, min_poll_interval_s: float = 10) -> str:
        return (
            f"sources:\n  - name: {self.name}\n    type: feed\n    url: {self.feed_url}\n"
            f"    min_poll_interval_s: {min_poll_interval_s}\n    max_poll_interval_s: {min_poll_interval_s}\n"
        )


def page(title: str, body: str, template: Template) -> bytes:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n") if p.strip())
    dated = template is not Template.NO_DATE
    head = [
        f"<title>{html.escape(title)}</title>",
        f'<meta property="og:title" content="{html.escape(title)}">',
        '<meta name="author" content="Dana Reporter">',
    ]
    if dated:
        head.append('<meta property="article:published_time" content="2026-11-30T08:15:00Z">')
    byline = '<p class="byline">By Dana Reporter</p>'
    if dated:
        byline += '<time datetime="2026-11-30T08:15:00Z">30 November 2026</time>'
    if template is Template.NO_BODY:
        article = f"<h1>{html.escape(title)}</h1>{byline}<p>Subscribe to read more.</p>"
    else:
        article = f"<h1>{html.escape(title)}</h1>{byline}{paragraphs}"
    nav = '<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/about">About us</a></nav>'
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{"".join(head)}</head>'
        f"<body><header>{nav}</header><main><article>{article}</article></main>"
        "<footer>Loopback News, a test publisher</footer></body></html>"
    ).encode()
