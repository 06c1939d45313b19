"""XML sitemaps (urlset, sitemapindex) and Google News / video sitemaps as candidate articles.

A ``<url>`` becomes a ``FeedEntry``: ``loc`` is the link, ``lastmod`` the update date (so
the ingest loop can skip pages that have not changed), ``news:publication_date`` (or
``video:publication_date``) the publication date and ``news:title`` the title. A plain
``lastmod`` is never taken for a publication date: sites regenerate it wholesale. A
sitemap index yields child sitemap URLs with their ``lastmod``, not entries.

Parsing is hardened: no DTD loading, no entity substitution, no network access, no
"huge tree" mode (libxml2's own depth and size limits stay on). Elements are matched by
local name, so the old Google 0.84 namespace and namespace-less sitemaps read the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree

from connectors.feed_dates import parse_feed_date
from connectors.feed_entries import (
    ChildSitemap,
    FeedContext,
    FeedOutcome,
    FoundEntry,
    ParsedFeed,
    normalise_language,
    read_entries,
)
from schemas.feed_entry import FeedKind

_GOOGLE_NEWS_NAMESPACE = "http://www.google.com/schemas/sitemap-news/0.9"


def _hardened_parser() -> Any:
    # A new parser per document: lxml parsers keep an error log and are not thread-safe.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        recover=True,  # a truncated sitemap still lists its first URLs; errors become warnings
    )


def parse_sitemap(body: bytes, *, url: str, source_name: str, source_language: str | None = None) -> ParsedFeed:
    parser = _hardened_parser()
    try:
        root = etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError) as error:
        return ParsedFeed(url=url, outcome=FeedOutcome.MALFORMED, detail=f"unreadable sitemap XML: {error}")
    warnings = tuple(f"line {e.line}: {e.message}" for e in list(parser.error_log)[:5])
    if root is None:
        problem = warnings[0] if warnings else "no root element"
        return ParsedFeed(url=url, outcome=FeedOutcome.MALFORMED, detail=f"unreadable sitemap XML: {problem}")
    root_name = _local_name(root)
    if root_name == "sitemapindex":
        return _index(root, url=url, warnings=warnings)
    if root_name != "urlset":
        return ParsedFeed(url=url, outcome=FeedOutcome.NOT_A_FEED, detail=f"XML root <{root_name}> is not a sitemap")

    url_elements = [child for child in root if _local_name(child) == "url"]
    is_news = any(_is_news(element) for element in url_elements)
    kind = FeedKind.NEWS_SITEMAP if is_news else FeedKind.SITEMAP
    context = FeedContext(
        feed_url=url,
        source_name=source_name,
        kind=kind,
        feed_title=None,
        language=None,
        base_url=url,
        source_language=normalise_language(source_language),
    )
    found = (_found_entry(position, element) for position, element in enumerate(url_elements, start=1))
    described = "Google News sitemap" if is_news else "sitemap"
    read = read_entries(found, context, described=described, unit="URLs", problem=warnings[0] if warnings else None)
    return ParsedFeed(
        url=url,
        outcome=read.outcome,
        detail=read.detail,
        kind=kind,
        entries=read.entries,
        skipped=read.skipped,
        warnings=warnings,
    )


def _index(root: Any, *, url: str, warnings: tuple[str, ...]) -> ParsedFeed:
    children: list[ChildSitemap] = []
    skipped: list[str] = []
    for position, element in enumerate((c for c in root if _local_name(c) == "sitemap"), start=1):
        loc = _child_text(element, "loc")
        absolute = urljoin(url, loc.replace(" ", "%20")) if loc else ""
        if urlsplit(absolute).scheme not in ("http", "https"):
            skipped.append(f"sitemap {position}: no http(s) <loc> (found {loc!r})")
            continue
        lastmod = parse_feed_date(_child_text(element, "lastmod"))
        children.append(ChildSitemap(url=absolute, lastmod=lastmod.at if lastmod else None))
    if children:
        outcome, detail = FeedOutcome.OK, f"sitemap index listing {len(children)} sitemaps"
    else:
        outcome, detail = FeedOutcome.EMPTY, "sitemap index listing no usable sitemaps"
    return ParsedFeed(
        url=url,
        outcome=outcome,
        detail=detail,
        kind=FeedKind.SITEMAP,
        child_sitemaps=tuple(children),
        skipped=tuple(skipped),
        warnings=warnings,
    )


def _found_entry(position: int, element: Any) -> FoundEntry:
    loc = _child_text(element, "loc")
    news = _first_child(element, "news")
    video = _first_child(element, "video")
    title, title_origin, published, language, tags = None, "title", None, None, []
    if news is not None:
        title, title_origin = _child_text(news, "title"), "news:title"
        date = _child_text(news, "publication_date")
        published = ("news:publication_date", date) if date else None
        publication = _first_child(news, "publication")
        language = _child_text(publication, "language") if publication is not None else None
        keywords = _child_text(news, "keywords") or ""
        tags = [keyword.strip() for keyword in keywords.split(",")]
    if video is not None:
        if title is None:
            title, title_origin = _child_text(video, "title"), "video:title"
        date = _child_text(video, "publication_date")
        if published is None and date:
            published = ("video:publication_date", date)
    lastmod = _child_text(element, "lastmod")
    return FoundEntry(
        position=position,
        link=loc,
        candidates=[("loc", loc)] if loc else [],
        title=title,
        title_origin=title_origin,
        tags=tags,
        published=published,
        updated=("lastmod", lastmod) if lastmod else None,
        language=normalise_language(language),
    )


def _is_news(element: Any) -> bool:
    return any(etree.QName(child).namespace == _GOOGLE_NEWS_NAMESPACE for child in _elements(element))


def _local_name(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str):  # comments, processing instructions, entity references
        return ""
    return str(etree.QName(tag).localname)


def _elements(element: Any) -> Iterator[Any]:
    return (child for child in element if isinstance(child.tag, str))


def _first_child(element: Any, name: str) -> Any | None:
    return next((child for child in _elements(element) if _local_name(child) == name), None)


def _child_text(element: Any, name: str) -> str | None:
    child = _first_child(element, name)
    if child is None:
        return None
    text = "".join(child.itertext()).strip()
    return text or None
