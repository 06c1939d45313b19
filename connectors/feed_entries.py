"""What every feed-format parser produces, and the rules they share for building entries.

The RSS/Atom, JSON Feed and sitemap parsers each read their format into ``FoundEntry``
values (strings as the document gives them, each with the element it came from); this
module turns those into ``FeedEntry`` records by one set of rules, so a title, a link or a
date is cleaned the same way whichever format carried it:

- titles and summaries become plain text: tags stripped, (double-)escaped entities decoded;
- links are resolved against the document's base (xml:base, else the feed URL), Google
  ``/url?q=`` wrappers are unwrapped, and the result is canonicalized (tracking parameters
  and fragments dropped, host lower-cased);
- dates go through ``connectors.feed_dates``; an undated entry stays undated.

An entry that cannot become a ``FeedEntry`` (no usable http(s) link) is reported in
``ParsedFeed.skipped`` with its position and reason, never dropped silently.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import parse_qs, urljoin, urlsplit

from pydantic import ValidationError

from connectors.feed_dates import parse_feed_date
from schemas.feed_entry import FeedEntry, FeedKind
from schemas.identity import canonicalize_url


class FeedOutcome(StrEnum):
    OK = "ok"  # at least one entry (or child sitemap); ``warnings`` may list recovered problems
    EMPTY = "empty"  # a well-formed feed or sitemap with nothing usable in it
    NOT_A_FEED = "not_a_feed"  # readable, but some other kind of document (HTML page, other JSON)
    MALFORMED = "malformed"  # meant as a feed but unreadable: broken XML/JSON, bad gzip, no entries recovered
    REFUSED = "refused"  # deliberately not parsed: entity declarations, over the size limit


@dataclass(frozen=True)
class ChildSitemap:
    """A sitemap listed by a sitemap index, with its ``lastmod`` so unchanged ones can be skipped."""

    url: str
    lastmod: datetime | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """Everything one feed or sitemap document said, and how reading it went."""

    url: str
    outcome: FeedOutcome
    detail: str  # readable: what was found, or what is wrong and where
    kind: FeedKind | None = None
    title: str | None = None
    language: str | None = None
    entries: tuple[FeedEntry, ...] = ()
    child_sitemaps: tuple[ChildSitemap, ...] = ()
    skipped: tuple[str, ...] = ()  # entries found but not usable, each with its position and reason
    warnings: tuple[str, ...] = ()  # problems the parser recovered from


@dataclass(frozen=True)
class FeedContext:
    """What every entry of one document shares."""

    feed_url: str
    source_name: str
    kind: FeedKind
    feed_title: str | None
    language: str | None
    base_url: str  # xml:base of the channel, or the feed URL
    source_language: str | None = None  # sources.yaml's, for reading dates when nothing else declares one


@dataclass
class FoundEntry:
    """One entry as a format parser read it: raw strings, each with the element it came from."""

    position: int  # 1-based, in document order
    link: str | None  # the entry's main link as given, before any preference rule
    # Where the article really is, best first, as (origin, href): e.g. feedburner:origLink
    # before a feedproxy link. The first one that resolves becomes canonical_url.
    candidates: list[tuple[str, str]] = field(default_factory=list)
    base_url: str | None = None  # xml:base in force for this entry, if the format has one
    entry_id: str | None = None
    title: str | None = None
    title_origin: str = "title"
    summary: str | None = None
    authors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    published: tuple[str, str] | None = None  # (origin, raw date)
    updated: tuple[str, str] | None = None
    language: str | None = None
    # An ISO 8601 value the entry carries beside its text date (an HTML <time datetime>),
    # which settles a numeric date whose day and month could be either way round.
    machine_date: tuple[str, str] | None = None  # (origin, value)


@dataclass(frozen=True)
class ReadEntries:
    """What a format reader's entries came to: the ``ParsedFeed`` fields it shares with every reader."""

    outcome: FeedOutcome
    detail: str
    entries: tuple[FeedEntry, ...]
    skipped: tuple[str, ...]


def read_entries(
    found: Iterable[FoundEntry | str], context: FeedContext, *, described: str, unit: str, problem: str | None = None
) -> ReadEntries:
    """Build every entry a reader found and say how reading went, the same way for every format.

    ``found`` holds the reader's entries, or for one it could not even read, the reason;
    ``described`` names the document ("rss20 feed", "Google News sitemap"), ``unit`` what it
    lists ("entries", "URLs"); ``problem`` is a parse error the reader recovered from. Zero
    entries is "empty", or "malformed" when there was such a problem: never a silent success.
    """
    entries: list[FeedEntry] = []
    skipped: list[str] = []
    for item in found:
        built = item if isinstance(item, str) else build_entry(item, context)
        if isinstance(built, str):
            skipped.append(built)
        else:
            entries.append(built)
    error = f"; XML error: {problem}" if problem else ""
    if entries:
        outcome = FeedOutcome.OK
        detail = f"{described} with {len(entries)} {unit}" + (f" ({len(skipped)} skipped)" if skipped else "")
    elif skipped:
        outcome = FeedOutcome.MALFORMED if problem else FeedOutcome.EMPTY
        detail = f"{described}: none of its {len(skipped)} {unit} is usable{error}"
    elif problem:
        outcome, detail = FeedOutcome.MALFORMED, f"{described} with no {unit} recovered{error}"
    else:
        outcome, detail = FeedOutcome.EMPTY, f"{described} with no {unit}"
    return ReadEntries(outcome, detail, tuple(entries), tuple(skipped))


def build_entry(found: FoundEntry, context: FeedContext) -> FeedEntry | str:
    """The ``FeedEntry`` for ``found``, or the reason it cannot be one."""
    label = f"entry {found.position}" + (f" ({found.title.strip()[:60]!r})" if found.title else "")
    provenance: dict[str, str] = {}
    base = urljoin(context.base_url, found.base_url) if found.base_url else context.base_url
    chosen = _choose_url(found.candidates, base)
    if chosen is None:
        given = ", ".join(f"{origin}={href!r}" for origin, href in found.candidates) or "none"
        if not found.candidates and found.entry_id:
            return f"{label}: no usable http(s) link, and its guid {found.entry_id.strip()[:80]!r} is not a URL"
        return f"{label}: no usable http(s) link (found: {given[:200]})"
    origin, href, canonical = chosen
    provenance["canonical_url"] = origin
    language = normalise_language(found.language) or context.language
    date_language = language or context.source_language
    published = _date(found.published, date_language, provenance, "published_at", found.machine_date)
    updated = _date(found.updated, date_language, provenance, "updated_at", found.machine_date)
    title = plain_text(found.title)
    if title is not None:
        provenance["title"] = found.title_origin
    try:
        return FeedEntry(
            canonical_url=canonical,
            url=(found.link or href).strip(),
            entry_id=found.entry_id.strip() if found.entry_id and found.entry_id.strip() else None,
            title=title,
            summary=plain_text(found.summary),
            authors=_distinct(plain_text(name) for name in found.authors),
            tags=_distinct(plain_text(tag) for tag in found.tags),
            published_at=published,
            updated_at=updated,
            language=language,
            feed_url=context.feed_url,
            feed_title=context.feed_title,
            source_name=context.source_name,
            found_in=context.kind,
            provenance=provenance,
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return f"{label}: {problems}"


def _choose_url(candidates: list[tuple[str, str]], base: str) -> tuple[str, str, str] | None:
    for origin, href in candidates:
        canonical = resolve_url(href, base)
        if canonical is not None:
            unwrapped = canonical != resolve_url(href, base, unwrap=False)
            return (f"{origin} (unwrapped from a Google redirect)" if unwrapped else origin), href, canonical
    return None


def _date(
    found: tuple[str, str] | None,
    language: str | None,
    provenance: dict[str, str],
    name: str,
    machine: tuple[str, str] | None = None,
) -> datetime | None:
    if found is None:
        return None
    origin, raw = found
    parsed = parse_feed_date(raw, language=language, machine_readable=machine[1] if machine else None)
    if parsed is None:
        provenance[name] = f"{origin} {raw.strip()[:60]!r} unreadable: left empty"
        return None
    if machine is not None and parsed.how.startswith("machine-readable"):
        origin = machine[0]
    provenance[name] = f"{origin} ({parsed.how})"
    return parsed.at


def _distinct(values: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return list(seen)


# Tags that separate words when stripped; inline ones (b, i, sup, a...) join them.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
        "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_TAG = re.compile(r"<!--.*?-->|<!\[CDATA\[|\]\]>|</?([A-Za-z][\w:-]*)(?:\s[^<>]*)?/?>", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def plain_text(value: str | None) -> str | None:
    """``value`` as plain text on one line, or ``None`` if nothing is left.

    Decoding repeats (at most three rounds) because feeds double-escape: ``&amp;amp;`` in
    XML is ``&amp;`` after parsing and ``&`` after one more round, and escaped markup
    (``&lt;b&gt;``) only becomes strippable once decoded.
    """
    if value is None:
        return None
    text = value
    for _ in range(3):
        decoded = html.unescape(_TAG.sub(_tag_replacement, text))
        if decoded == text:
            break
        text = decoded
    text = " ".join(_CONTROL.sub("", text).split())
    return text or None


def _tag_replacement(match: re.Match[str]) -> str:
    name = match.group(1)
    return " " if name is None or name.lower() in _BLOCK_TAGS else ""


def resolve_url(href: str, base: str, *, unwrap: bool = True) -> str | None:
    """The canonical absolute http(s) URL ``href`` points to from ``base``, or ``None``."""
    text = href.strip().replace(" ", "%20")
    if not text:
        return None
    try:
        absolute = urljoin(base, text)
        return canonicalize_url(_unwrap_redirect(absolute) if unwrap else absolute)
    except ValueError:
        return None


_GOOGLE_HOST = re.compile(r"^(?:www\.)?google\.[a-z.]{2,6}$")


def _unwrap_redirect(url: str) -> str:
    # Google Alerts and search links wrap the target as /url?url=... (or q=); the target
    # is the article, the wrapper only counts the click.
    parts = urlsplit(url)
    if parts.path == "/url" and _GOOGLE_HOST.match((parts.hostname or "").lower()):
        query = parse_qs(parts.query)
        for key in ("url", "q"):
            target = query.get(key, [""])[0]
            if target.startswith(("http://", "https://")):
                return target
    return url


# Links that count a click on the way to the article: FeedBurner/feedproxy, Feedsportal,
# and publishers' own feed click-trackers (the Washington Post's click.phdo).
_CLICK_REDIRECT = re.compile(
    r"^https?://(?:feedproxy\.google\.com/|feeds\.feedburner\.com/~r/|[^/]*feedsportal\.com/|[^/]+/~r/|"
    r"[^/]+/click\.phdo\?)",
    re.IGNORECASE,
)


def is_click_redirect(url: str) -> bool:
    return bool(_CLICK_REDIRECT.match(url.strip()))


def normalise_language(value: str | None) -> str | None:
    """A declared language as a lower-case BCP 47-ish tag (``en-us``), or ``None`` if it is not one."""
    if not value:
        return None
    tag = value.strip().replace("_", "-").lower()
    return tag if re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", tag) else None
