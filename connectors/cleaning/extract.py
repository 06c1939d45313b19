"""One fetched HTML page in, one cleaned article out: body text and metadata.

``extract_article`` is a pure function: no network, no clock other than "today" for
rejecting future dates, no global state. Trafilatura finds the main text; declared
metadata (JSON-LD, Open Graph, <meta>, <time>) supplies the title, date and people, with
htmldate as the fallback for dates; the repairs in ``connectors.cleaning.repairs`` remove
the defects extractors are known to leave. Every rule is about how pages are built in
general, never about one host or page. It must never raise: empty, binary, huge or broken
input yields an empty or partial ``ExtractedPage``.
"""

from __future__ import annotations

import datetime as dt
import logging
from copy import deepcopy
from dataclasses import dataclass

import htmldate
import py3langid
import trafilatura
from lxml.html import HtmlElement
from trafilatura.utils import load_html

from connectors.cleaning.decoding import decode_html
from connectors.cleaning.metadata import (
    Declarations,
    PublicationTime,
    choose_title,
    declared_authors,
    declared_description,
    declared_image,
    declared_language,
    declared_publication,
    declared_topics,
    parse_publication,
    read_declarations,
    settle_day_with_url,
)
from connectors.cleaning.repairs import (
    clean_inline_text,
    drop_bylines,
    drop_furniture_lines,
    drop_headline_copies,
    drop_repeated_paragraphs,
    join_broken_hyphenation,
    join_paragraphs,
)

LOGGER = logging.getLogger(__name__)

# Larger inputs are cut rather than refused: real articles fit many times over, and the
# cap bounds parse time on hostile input.
MAX_HTML_CHARS = 5_000_000
# Language guessed from the text only when the page declares none and there is enough text.
_MIN_TEXT_FOR_LANGUAGE_GUESS = 200


@dataclass(frozen=True)
class FieldMethods:
    """Which declaration or extractor produced each field ("none" when absent)."""

    title: str = "none"
    text: str = "none"
    authors: str = "none"
    published: str = "none"
    description: str = "none"
    image: str = "none"
    language: str = "none"
    topics: str = "none"


@dataclass(frozen=True)
class ExtractedPage:
    """A cleaned article. ``text`` holds paragraphs separated by one blank line.

    ``published_on`` is the publication day as the page states it (its own time zone);
    ``published_at`` is the same moment in UTC, present only when the page gave a time of
    day with a zone.
    """

    title: str | None = None
    text: str = ""
    authors: tuple[str, ...] = ()
    published_on: dt.date | None = None
    published_at: dt.datetime | None = None
    description: str | None = None
    image: str | None = None
    language: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    methods: FieldMethods = FieldMethods()


def extract_article(html: str | bytes, url: str | None = None) -> ExtractedPage:
    """The article in ``html`` (text or raw bytes in any encoding); never raises."""
    try:
        tree = _parse(html)
        if tree is None:
            return ExtractedPage()
        return _extract_from_tree(tree, url)
    except Exception:  # the contract is "never raises": the page is logged, not lost
        LOGGER.warning("extraction failed, returning an empty page: %s", url, exc_info=True)
        return ExtractedPage()


def _parse(html: str | bytes) -> HtmlElement | None:
    if not isinstance(html, str | bytes):
        return None
    text = decode_html(html[: MAX_HTML_CHARS * 4] if isinstance(html, bytes) else html)[:MAX_HTML_CHARS]
    text = text.replace("\x00", "")
    if not text.strip():
        return None
    tree = load_html(text)
    return tree if isinstance(tree, HtmlElement) else None


def _extract_from_tree(tree: HtmlElement, url: str | None) -> ExtractedPage:
    declarations = read_declarations(tree)
    title, title_method = choose_title(declarations, url)
    authors, authors_method = declared_authors(declarations)
    published, published_method = _publication(declarations, tree, url)
    description, description_method = declared_description(declarations)
    image, image_method = declared_image(declarations, url)
    categories, tags = declared_topics(declarations)
    text, text_method = _body(tree, url, declarations, title, authors)
    language, language_method = declared_language(declarations)
    if language is None and len(text) >= _MIN_TEXT_FOR_LANGUAGE_GUESS:
        language, language_method = py3langid.classify(text[:5000])[0], "py3langid"
    return ExtractedPage(
        title=title,
        text=text,
        authors=authors,
        published_on=published.day if published else None,
        published_at=published.instant if published else None,
        description=description,
        image=image,
        language=language,
        categories=categories,
        tags=tags,
        methods=FieldMethods(
            title=title_method,
            text=text_method,
            authors=authors_method,
            published=published_method,
            description=description_method,
            image=image_method,
            language=language_method,
            topics="declared" if categories or tags else "none",
        ),
    )


def _publication(declarations: Declarations, tree: HtmlElement, url: str | None) -> tuple[PublicationTime | None, str]:
    today = dt.datetime.now(dt.UTC).date()
    declared, method = declared_publication(declarations, today)
    if declared is not None:
        return settle_day_with_url(declared, url), method
    # htmldate copies the tree it is given, so the shared tree stays intact.
    found = htmldate.find_date(tree, original_date=True, url=url, outputformat="%Y-%m-%d")
    if found and (parsed := parse_publication(found, today)) is not None:
        return PublicationTime(parsed.day, None), "htmldate"
    return None, "none"


def _body(
    tree: HtmlElement, url: str | None, declarations: Declarations, title: str | None, authors: tuple[str, ...]
) -> tuple[str, str]:
    document = trafilatura.bare_extraction(deepcopy(tree), url=url, include_comments=False, with_metadata=False)
    raw = getattr(document, "text", None) or ""
    if not raw:
        return "", "none"
    text = join_paragraphs(cleaned for line in raw.splitlines() if (cleaned := clean_inline_text(line)))
    headlines = [title or "", declarations.title_element, *declarations.headings]
    headlines += [value for name in ("og:title", "twitter:title") for value in declarations.meta.get(name, ())]
    text = drop_headline_copies(text, [clean_inline_text(headline) for headline in headlines])
    text = drop_bylines(text, authors)
    text = drop_furniture_lines(text)
    text = drop_repeated_paragraphs(text)
    text = join_broken_hyphenation(text)
    return text, "trafilatura"
