"""RSS 0.9x/1.0/2.0 and Atom documents, read with feedparser, as candidate articles.

feedparser does the tolerant XML work (encodings, undeclared namespaces, the loose
fallback parser for broken documents); this module decides what its answer means:
which link is the article (``feedburner:origLink`` over a FeedBurner link, the guid over
a click-tracking redirect), which date is the publication date, and whether "no entries"
is an empty feed or a broken one.

It must never hand feedparser anything but a file object: given ``bytes``, feedparser
treats the value as a file name and reads the local file if one exists. It never fetches
anything; the document arrives as bytes and nothing in it is dereferenced.
"""

from __future__ import annotations

import io
import re
from typing import Any

import feedparser

from connectors.feed_entries import (
    FeedContext,
    FeedOutcome,
    FoundEntry,
    ParsedFeed,
    is_click_redirect,
    normalise_language,
    plain_text,
    read_entries,
)
from schemas.feed_entry import FeedKind

_RDF_VERSIONS = frozenset({"rss090", "rss10"})
# An HTML <time datetime="..."> in an item's description or content (Drupal and others
# write the machine-readable date there beside a localised pubDate).
_TIME_DATETIME = re.compile(r"<time\b[^>]*\bdatetime\s*=\s*[\"']([^\"'<>]{10,40})[\"']", re.IGNORECASE)
_ABSOLUTE_HTTP = re.compile(r"\s*https?://[^\s/?#]+", re.IGNORECASE)


def parse_rss_atom(
    body: bytes, *, url: str, content_type: str | None, source_name: str, source_language: str | None = None
) -> ParsedFeed:
    """Entries of an RSS, RDF or Atom document; ``body`` is the (decompressed) document.

    ``content_type`` is passed on only when it names a charset: a bare ``text/xml`` would
    make feedparser assume US-ASCII (RFC 3023) over the document's own declaration.
    """
    headers = {"content-type": content_type} if content_type and "charset=" in content_type.lower() else {}
    result = feedparser.parse(io.BytesIO(body), response_headers=headers)
    version = str(result.get("version") or "")
    kind = _kind(version)
    problem = _describe_exception(result.get("bozo_exception")) if result.get("bozo") else None
    if kind is None:
        detail = "no RSS, RDF or Atom root element"
        if problem:
            return ParsedFeed(url=url, outcome=FeedOutcome.MALFORMED, detail=f"{detail}; XML error: {problem}")
        return ParsedFeed(url=url, outcome=FeedOutcome.NOT_A_FEED, detail=detail)

    channel: Any = result.get("feed", {})
    language = normalise_language(channel.get("language"))
    feed_title = plain_text(channel.get("title"))
    context = FeedContext(
        feed_url=url,
        source_name=source_name,
        kind=kind,
        feed_title=feed_title,
        language=language,
        base_url=url,
        source_language=normalise_language(source_language),
    )
    found = (_found_entry(position, item) for position, item in enumerate(result.get("entries", []), start=1))
    read = read_entries(found, context, described=f"{version} feed", unit="entries", problem=problem)
    return ParsedFeed(
        url=url,
        outcome=read.outcome,
        detail=read.detail,
        kind=kind,
        title=feed_title,
        language=language,
        entries=read.entries,
        skipped=read.skipped,
        warnings=(f"recovered from: {problem}",) if problem else (),
    )


def _kind(version: str) -> FeedKind | None:
    if version in _RDF_VERSIONS:
        return FeedKind.RDF
    if version.startswith("rss"):
        return FeedKind.RSS
    if version.startswith("atom"):
        return FeedKind.ATOM
    return None


def _found_entry(position: int, item: Any) -> FoundEntry:
    link = _text(item.get("link"))
    guid = _text(item.get("id"))
    orig_link = _text(item.get("feedburner_origlink"))
    candidates: list[tuple[str, str]] = []
    # A guid is an identifier: only one that is an absolute URL may be fetched. A bare token
    # ("m5") resolved against the feed's URL would be a request for a page that never existed.
    guid_is_url = bool(guid) and _ABSOLUTE_HTTP.match(guid or "") is not None
    if orig_link:
        candidates.append(("feedburner:origLink", orig_link))
    if link and guid and is_click_redirect(link) and guid_is_url:
        candidates.append(("guid (the link is a click redirect)", guid))
    if link:
        # feedparser fills ``link`` from a permalink guid when the item has no <link>.
        from_guid = bool(item.get("guidislink")) and link == guid
        if guid_is_url or not from_guid:
            candidates.append(("guid" if from_guid else "link", link))
    if guid and guid != link and guid_is_url:
        candidates.append(("guid (no usable link)", guid))

    # dict.get: FeedParserDict maps a missing "updated" to "published" (feedparser issue 310),
    # which would make every RSS item look updated at its publication time.
    published = _text(dict.get(item, "published"))
    updated = _text(dict.get(item, "updated"))
    title_detail = item.get("title_detail") or {}
    found = FoundEntry(
        position=position,
        link=link,
        candidates=candidates,
        entry_id=guid,
        title=_text(item.get("title")),
        summary=_text(item.get("summary")),
        authors=_authors(item),
        tags=[str(tag.get("label") or tag.get("term") or "") for tag in item.get("tags") or []],
        published=("published", published) if published else None,
        updated=("updated", updated) if updated else None,
        language=_text(title_detail.get("language")),
        machine_date=_machine_date(item),
    )
    if published is None and updated is not None:
        # RSS has no update date of its own: dc:date and atom:updated land in ``updated``
        # and are then the only date the item has, so they stand in for publication too.
        found.published = ("updated, for want of a publication date", updated)
    return found


def _machine_date(item: Any) -> tuple[str, str] | None:
    """The first ``<time datetime>`` in the item's description or content, if any."""
    texts = [("description", _text(item.get("summary")))]
    texts += [("content", _text(c.get("value"))) for c in item.get("content") or [] if isinstance(c, dict)]
    for origin, text in texts:
        match = _TIME_DATETIME.search(text or "")
        if match:
            return f"<time datetime> in the {origin}", match.group(1).strip()
    return None


def _authors(item: Any) -> list[str]:
    names = [str(author.get("name") or "") for author in item.get("authors") or [] if isinstance(author, dict)]
    names = [name for name in names if name.strip()]
    if not names and _text(item.get("author")):
        names = [str(item.get("author"))]
    return names


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped or None


def _describe_exception(error: object) -> str:
    if error is None:
        return "unknown problem"
    message = str(error).strip() or "(no message)"
    return f"{type(error).__name__}: {message[:300]}"
