"""JSON Feed 1.0 and 1.1 documents (https://jsonfeed.org/version/1.1) as candidate articles.

feedparser 6 does not read JSON Feed, so this small model does. It is lenient where
publishers are sloppy (numeric ids, RFC 822 dates instead of RFC 3339, 1.0 ``author``
beside 1.1 ``authors``) and strict about what makes a document a JSON Feed at all: other
JSON (an API response, RSS serialised as JSON) is "not a feed", never zero entries.
One bad item is skipped with its reason; it does not sink the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.feed_entries import (
    FeedContext,
    FeedOutcome,
    FoundEntry,
    ParsedFeed,
    normalise_language,
    plain_text,
    read_entries,
)
from connectors.http.charsets import decode_text, parse_content_type
from schemas.feed_entry import FeedKind


class JsonFeedAuthor(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    name: str | None = None
    url: str | None = None


class JsonFeedItem(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str | None = None
    url: str | None = None
    external_url: str | None = None
    title: str | None = None
    summary: str | None = None
    content_text: str | None = None
    content_html: str | None = None
    date_published: str | None = None
    date_modified: str | None = None
    author: JsonFeedAuthor | None = None  # 1.0
    authors: list[JsonFeedAuthor] = Field(default_factory=list)  # 1.1
    tags: list[str] = Field(default_factory=list)
    language: str | None = None  # 1.1


class JsonFeed(BaseModel):
    # Items are validated one at a time (see parse_json_feed), so they are left raw here.
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    version: str | None = None
    title: str | None = None
    home_page_url: str | None = None
    feed_url: str | None = None
    language: str | None = None
    items: list[Any]


def parse_json_feed(
    body: bytes, *, url: str, content_type: str | None, source_name: str, source_language: str | None = None
) -> ParsedFeed:
    text, warnings = _decode(body, content_type)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return ParsedFeed(
            url=url,
            outcome=FeedOutcome.MALFORMED,
            detail=f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}",
        )
    except (ValueError, RecursionError) as error:
        return ParsedFeed(url=url, outcome=FeedOutcome.MALFORMED, detail=f"unreadable JSON: {type(error).__name__}")
    if not isinstance(document, dict):
        return ParsedFeed(
            url=url, outcome=FeedOutcome.NOT_A_FEED, detail=f"JSON {type(document).__name__}, not a JSON Feed object"
        )
    version = document.get("version")
    declared = isinstance(version, str) and "jsonfeed.org/version/" in version
    if not declared and not isinstance(document.get("items"), list):
        keys = ", ".join(sorted(str(key) for key in document)[:8])
        return ParsedFeed(
            url=url, outcome=FeedOutcome.NOT_A_FEED, detail=f"JSON object without a JSON Feed version (keys: {keys})"
        )
    try:
        feed = JsonFeed.model_validate(document)
    except ValidationError as error:
        return ParsedFeed(url=url, outcome=FeedOutcome.MALFORMED, detail=f"not a valid JSON Feed: {_first(error)}")
    if not declared:
        warnings.append(f"no JSON Feed version (version={version!r}); read as one because it has items")

    language = normalise_language(feed.language)
    feed_title = plain_text(feed.title)
    context = FeedContext(
        feed_url=url,
        source_name=source_name,
        kind=FeedKind.JSON_FEED,
        feed_title=feed_title,
        language=language,
        base_url=feed.home_page_url or url,
        source_language=normalise_language(source_language),
    )
    described = f"JSON Feed {str(version).rsplit('/', 1)[-1]}" if declared else "JSON Feed (undeclared version)"
    read = read_entries(_found_entries(feed.items), context, described=described, unit="items")
    return ParsedFeed(
        url=url,
        outcome=read.outcome,
        detail=read.detail,
        kind=FeedKind.JSON_FEED,
        title=feed_title,
        language=language,
        entries=read.entries,
        skipped=read.skipped,
        warnings=tuple(warnings),
    )


def _found_entries(items: list[Any]) -> Iterator[FoundEntry | str]:
    """Each item as a ``FoundEntry``, or why it is not a JSON Feed item at all."""
    for position, raw in enumerate(items, start=1):
        try:
            yield _found_entry(position, JsonFeedItem.model_validate(raw))
        except ValidationError as error:
            yield f"item {position}: {_first(error)}"


def _found_entry(position: int, item: JsonFeedItem) -> FoundEntry:
    candidates = [
        (origin, value) for origin, value in (("url", item.url), ("external_url", item.external_url)) if value
    ]
    # JSON Feed 1.1 allows the id to be the permalink; use it only when nothing else links.
    if item.id and item.id.startswith(("http://", "https://")):
        candidates.append(("id", item.id))
    authors = [author.name for author in [*item.authors, *([item.author] if item.author else [])] if author.name]
    return FoundEntry(
        position=position,
        link=item.url or item.external_url,
        candidates=candidates,
        entry_id=item.id,
        title=item.title,
        summary=item.summary or item.content_text or item.content_html,
        authors=authors,
        tags=item.tags,
        published=("date_published", item.date_published) if item.date_published else None,
        updated=("date_modified", item.date_modified) if item.date_modified else None,
        language=item.language,
    )


def _decode(body: bytes, content_type: str | None) -> tuple[str, list[str]]:
    # RFC 8259: JSON exchanged between systems is UTF-8. The one decoder reads valid UTF-8
    # as UTF-8 whatever is declared; anything else is worth a warning naming the evidence.
    decoded = decode_text(body, parse_content_type(content_type)[1])
    if decoded.encoding == "utf-8" or body.isascii():
        return decoded.text, []
    return decoded.text, [f"not UTF-8; decoded as {decoded.encoding} (evidence: {decoded.source})"]


def _first(error: ValidationError) -> str:
    item = error.errors(include_url=False)[0]
    location = ".".join(str(part) for part in item["loc"]) or "(document)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{location}: {item['msg']}{more}"
