"""The one entry point from fetched feed or sitemap bytes to candidate articles.

``parse_feed_document`` looks at the bytes, not at the name or the Content-Type, to decide
what they are, because both lie: ``.xml`` files that are gzip, ``.xml.gz`` files that are
not, Atom named ``.rss``, HTML error pages served as feeds, JSON Feed under ``text/plain``.
Then it hands the document to the reader for its format (``feeds``, ``jsonfeed`` or
``sitemaps``) and returns a ``ParsedFeed`` whose ``outcome`` always says what happened:
zero entries is "empty", "not_a_feed", "malformed" or "refused", never a silent success.

Safety rules, because the bytes come from anywhere:

- gzip is decompressed incrementally up to ``max_bytes`` (50 MB by default); a bomb is
  refused after reading at most that much, never held in memory whole;
- a document whose prolog declares entities (``<!DOCTYPE x [<!ENTITY ...>]>``) is refused
  before any XML parser sees it: that is how "billion laughs" and external-entity attacks
  start, and real feeds do not need it;
- nothing here touches the network or the file system.

It must never raise: anything unreadable becomes an outcome with a readable ``detail``.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import zlib
from dataclasses import replace

from connectors.feed_entries import FeedOutcome, ParsedFeed, plain_text
from connectors.feeds import parse_rss_atom
from connectors.http.charsets import decode_text, wide_unicode
from connectors.jsonfeed import parse_json_feed
from connectors.sitemaps import parse_sitemap

__all__ = ["DEFAULT_MAX_DOCUMENT_BYTES", "FeedOutcome", "ParsedFeed", "parse_feed_document"]

DEFAULT_MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1024 * 1024

# Declarations, comments and the DOCTYPE (with its internal subset) that may precede the root.
_PROLOG_ITEM = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\]\s*)?>)", re.DOTALL | re.IGNORECASE)
_ROOT = re.compile(rb"\s*<([A-Za-z_][\w.:-]*)")
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.DOTALL | re.IGNORECASE)
_ENCODING_DECLARATION = re.compile(r"""^(\s*<\?xml[^>]*?encoding\s*=\s*)["'][^"']*["']""")
_FEED_ROOTS = frozenset({"rss", "rdf", "feed", "channel"})
_SITEMAP_ROOTS = frozenset({"urlset", "sitemapindex"})
# Searched for the <feed>/<rss> that some blogs wrap inside an XHTML page.
_EMBEDDED_FEED = re.compile(rb"<(?:\w+:)?(?:feed|rss)[\s>]")


def parse_feed_document(
    body: bytes,
    *,
    url: str,
    content_type: str | None,
    source_name: str,
    max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    source_language: str | None = None,
) -> ParsedFeed:
    """Read one fetched feed or sitemap document; ``url`` is where it was fetched from.

    ``content_type`` is the HTTP header as received; only its charset is used, and only
    where the document cannot tell its own encoding. ``max_bytes`` caps the document size
    after decompression. ``source_language`` (sources.yaml) reads dates where neither the
    entry nor the document declares a language.
    """
    try:
        return _parse(
            body,
            url=url,
            content_type=content_type,
            source_name=source_name,
            max_bytes=max_bytes,
            source_language=source_language,
        )
    except Exception as error:  # the contract is an outcome, never an exception
        # Reaching this is a bug in a reader, not a property of the document; the detail
        # says so, and the document goes to the dead-letter topic with it.
        return ParsedFeed(
            url=url,
            outcome=FeedOutcome.MALFORMED,
            detail=f"internal parser error, please report with the document: {type(error).__name__}: {error}"[:500],
        )


def _parse(
    body: bytes, *, url: str, content_type: str | None, source_name: str, max_bytes: int, source_language: str | None
) -> ParsedFeed:
    if not body:
        return ParsedFeed(url=url, outcome=FeedOutcome.MALFORMED, detail="empty document (0 bytes)")
    if len(body) > max_bytes:
        return _too_large(url, f"{len(body):,} bytes", max_bytes)
    warnings: list[str] = []
    if body.startswith(_GZIP_MAGIC):
        inflated = _gunzip(body, max_bytes)
        if isinstance(inflated, ParsedFeed):
            return replace(inflated, url=url)
        body = inflated
        warnings.append("gzip-compressed document, decompressed")
        if not body:
            return ParsedFeed(url=url, outcome=FeedOutcome.MALFORMED, detail="gzip member decompresses to nothing")
    body, transcoded = _as_utf8(body)
    if transcoded:
        warnings.append(transcoded)
        content_type = None  # its charset described the bytes before re-encoding
    body = _without_leading_space(body)

    start = body[3:4] if body.startswith(codecs.BOM_UTF8) else body[:1]
    if start in (b"{", b"["):
        return _with_warnings(
            parse_json_feed(
                body, url=url, content_type=content_type, source_name=source_name, source_language=source_language
            ),
            warnings,
        )
    if b"<" not in body[:4096]:
        if content_type and "json" in content_type.lower():
            return _with_warnings(
                parse_json_feed(
                    body, url=url, content_type=content_type, source_name=source_name, source_language=source_language
                ),
                warnings,
            )
        preview = body[:40].decode("utf-8", errors="replace")
        return ParsedFeed(url=url, outcome=FeedOutcome.NOT_A_FEED, detail=f"neither XML nor JSON: starts {preview!r}")

    prolog_end = _prolog_end(body)
    root = _ROOT.match(body, prolog_end)
    searched = body[:prolog_end] if root else body
    if _ENTITY_DECLARATION.search(searched):
        return ParsedFeed(
            url=url,
            outcome=FeedOutcome.REFUSED,
            detail="document declares XML entities (<!ENTITY> in its DOCTYPE); refused unparsed, since entity "
            "expansion is how 'billion laughs' and external-entity attacks work and feeds do not need it",
        )
    root_name = root.group(1).decode("ascii", errors="replace").rsplit(":", 1)[-1].lower() if root else ""

    if root_name in _SITEMAP_ROOTS:
        return _with_warnings(
            parse_sitemap(body, url=url, source_name=source_name, source_language=source_language), warnings
        )
    if root_name == "html" and not _EMBEDDED_FEED.search(body):
        return ParsedFeed(
            url=url, outcome=FeedOutcome.NOT_A_FEED, detail=f"an HTML page{_html_title(body)}, not a feed"
        )
    parsed = parse_rss_atom(
        body, url=url, content_type=content_type, source_name=source_name, source_language=source_language
    )
    if root_name == "html":
        if parsed.outcome is FeedOutcome.OK:
            warnings.append("feed found inside an HTML page")
        else:
            return ParsedFeed(
                url=url, outcome=FeedOutcome.NOT_A_FEED, detail=f"an HTML page{_html_title(body)}, not a feed"
            )
    elif root_name and root_name not in _FEED_ROOTS and parsed.kind is None:
        return ParsedFeed(
            url=url, outcome=FeedOutcome.NOT_A_FEED, detail=f"XML root <{root_name}> is not a feed or sitemap"
        )
    elif not root_name and parsed.outcome is not FeedOutcome.OK:
        return ParsedFeed(url=url, outcome=FeedOutcome.MALFORMED, detail=f"no XML root element found; {parsed.detail}")
    return _with_warnings(parsed, warnings)


def _gunzip(body: bytes, max_bytes: int) -> bytes | ParsedFeed:
    # Read in chunks so a bomb costs at most max_bytes of memory before it is refused.
    chunks: list[bytes] = []
    size = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            while chunk := stream.read(_READ_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    return _too_large("", f"gzip decompressing to more than {max_bytes:,} bytes", max_bytes)
                chunks.append(chunk)
    except (OSError, EOFError, zlib.error) as error:
        return ParsedFeed(url="", outcome=FeedOutcome.MALFORMED, detail=f"corrupt or truncated gzip data: {error}")
    return b"".join(chunks)


def _too_large(url: str, what: str, max_bytes: int) -> ParsedFeed:
    return ParsedFeed(
        url=url,
        outcome=FeedOutcome.REFUSED,
        detail=f"{what}: over the {max_bytes:,}-byte document limit (raise max_bytes if the source is legitimate)",
    )


def _as_utf8(body: bytes) -> tuple[bytes, str | None]:
    """UTF-16/32 documents re-encoded as UTF-8, so every later step can read markup as ASCII.

    ``connectors.http.charsets`` recognises them (by BOM, or the NUL pattern of the first
    characters) and decodes them; the XML declaration's encoding is rewritten to match.
    """
    if wide_unicode(body) is None:
        return body, None
    decoded = decode_text(body, None)
    text = _ENCODING_DECLARATION.sub(r'\1"utf-8"', decoded.text, count=1)
    return text.encode("utf-8"), f"{decoded.encoding} document re-encoded as UTF-8"


def _without_leading_space(body: bytes) -> bytes:
    # Whitespace before "<?xml" is a fatal error for expat and lxml, and feedparser's
    # loose fallback parser loses detail; it carries no meaning, so it goes.
    if body.startswith(codecs.BOM_UTF8):
        return codecs.BOM_UTF8 + body[3:].lstrip(b" \t\r\n")
    return body.lstrip(b" \t\r\n")


def _prolog_end(body: bytes) -> int:
    position = 0
    while (item := _PROLOG_ITEM.match(body, position)) is not None and item.end() > position:
        position = item.end()
    return position


def _html_title(body: bytes) -> str:
    match = _HTML_TITLE.search(body[:65536])
    if match is None:
        return ""
    title = plain_text(match.group(1).decode("utf-8", errors="replace"))
    return f" titled {title[:80]!r}" if title else ""


def _with_warnings(parsed: ParsedFeed, warnings: list[str]) -> ParsedFeed:
    return replace(parsed, warnings=(*warnings, *parsed.warnings)) if warnings else parsed
