"""One fetched HTML page in, one cleaned article out: body text and metadata.

``extract_article`` is a pure function: no network, no clock other than "today" for
rejecting future dates, no global state. Trafilatura's main extractor finds the main
text, and on pages where that text looks like the wrong block, readability and jusText
read the page too and the reading the others agree with is kept
(``connectors.cleaning.candidates``); declared metadata (JSON-LD, Open Graph, <meta>,
<time>) supplies the title, date and people, with htmldate as the fallback for dates; the
repairs in ``connectors.cleaning.repairs`` remove the defects extractors are known to leave,
from every reading alike, before readings are compared. Every rule is about how pages are built in
general, never about one host or page. It must never raise: empty, binary, huge or broken
input yields an empty or partial ``ExtractedPage``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

import htmldate
import py3langid
from lxml.html import HtmlElement
from trafilatura.utils import load_html

from connectors.cleaning.candidates import (
    SIGNS,
    doubts,
    main_reading,
    most_agreed,
    other_readings,
    page_facts,
)
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
    settle_day_in_declared_region,
    settle_day_with_url,
)
from connectors.cleaning.repairs import (
    clean_inline_text,
    drop_bylines,
    drop_contact_lines,
    drop_furniture_lines,
    drop_headline_copies,
    drop_link_paragraphs,
    drop_repeated_paragraphs,
    join_broken_hyphenation,
    join_paragraphs,
    split_paragraphs,
)
from connectors.http.charsets import decode_text

LOGGER = logging.getLogger(__name__)

# Larger inputs are cut rather than refused: real articles fit many times over, and the
# cap bounds parse time on hostile input.
MAX_HTML_CHARS = 5_000_000
# How far into the body a standfirst may sit, and how many paragraphs after it locate the
# element holding the article's text.
_STANDFIRST_HEAD = 3
_CONTAINER_PROBES = 3
# Paragraphs are found in the tree by the start of their text: enough characters to be
# unambiguous, few enough that inline markup further on does not matter.
_LOCATOR_CHARS = 40
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = _HEADINGS | {
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "dd",
    "dt",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "blockquote",
    "figure",
    "figcaption",
    "td",
    "body",
}
_NOT_TEXT = frozenset({"script", "style", "noscript", "template", "title", "textarea"})
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


@dataclass(frozen=True)
class BodyRules:
    """Which body rules run. Every one is on in production; the extraction benchmark turns
    one off at a time (an ablation) to show what each earns on each reference set.

    ``main_mode`` is trafilatura's mode for the main reading: ``"full"`` (its default, with
    its own readability/jusText check) or ``"fast"`` (the main extractor alone, which misses
    more wrong blocks on pages unlike the ones it was tuned on). ``comparison`` says when the
    main reading is compared with readability's and jusText's readings: ``"doubtful"`` (only
    when it shows a sign of being the wrong block), ``"never"`` (with a fast main pass, full
    mode only when that is empty) or ``"always"``.
    """

    headline_copies: bool = True
    bylines: bool = True
    header_standfirst: bool = True
    link_paragraphs: bool = True
    furniture_lines: bool = True
    contact_lines: bool = True
    repeated_paragraphs: bool = True
    broken_hyphenation: bool = True
    comparison: Literal["doubtful", "never", "always"] = "doubtful"
    doubt_signs: frozenset[str] = frozenset(SIGNS)
    main_mode: Literal["full", "fast"] = "full"

    def __post_init__(self) -> None:
        if self.comparison not in ("doubtful", "never", "always"):
            raise ValueError(f"BodyRules.comparison must be doubtful, never or always, not {self.comparison!r}")
        if self.main_mode not in ("full", "fast"):
            raise ValueError(f"BodyRules.main_mode must be full or fast, not {self.main_mode!r}")
        if unknown := self.doubt_signs - set(SIGNS):
            raise ValueError(f"unknown doubt signs {sorted(unknown)}; the signs are {', '.join(SIGNS)}")

    @classmethod
    def repairs(cls) -> tuple[str, ...]:
        """The names of the repairs that can be turned off, in the order they run."""
        return tuple(field.name for field in dataclasses.fields(cls) if field.type == "bool")

    def without(self, repair: str) -> BodyRules:
        if repair not in self.repairs():
            raise ValueError(f"no body repair named {repair!r}; the repairs are {', '.join(self.repairs())}")
        off: dict[str, Any] = {repair: False}
        return dataclasses.replace(self, **off)


ALL_RULES = BodyRules()


def extract_article(html: str | bytes, url: str | None = None, rules: BodyRules = ALL_RULES) -> ExtractedPage:
    """The article in ``html`` (text or raw bytes in any encoding); never raises.

    ``rules`` is for measuring what each body rule earns; production keeps them all.
    """
    try:
        return extract_article_or_raise(html, url, rules)
    except Exception:  # the contract is "never raises": the page is logged, not lost
        LOGGER.warning("extraction failed, returning an empty page: %s", url, exc_info=True)
        return ExtractedPage()


def extract_article_or_raise(html: str | bytes, url: str | None = None, rules: BodyRules = ALL_RULES) -> ExtractedPage:
    """``extract_article`` letting a bug of ours raise, for callers that must tell one from a
    page without an article (the ingest service dead-letters it as ``internal_error``)."""
    tree = _parse(html)
    if tree is None:
        return ExtractedPage()
    return _extract_from_tree(tree, url, rules)


def _parse(html: str | bytes) -> HtmlElement | None:
    if not isinstance(html, str | bytes):
        return None
    if isinstance(html, bytes):
        # Raw bytes come without the HTTP header's charset: the page's BOM or declaration,
        # else detection, decides, the same way the HTTP layer decodes a fetched page.
        html = decode_text(html[: MAX_HTML_CHARS * 4], charset_header=None).text
    text = html[:MAX_HTML_CHARS]
    text = text.replace("\x00", "")
    if not text.strip():
        return None
    tree = load_html(text)
    return tree if isinstance(tree, HtmlElement) else None


def _extract_from_tree(tree: HtmlElement, url: str | None, rules: BodyRules) -> ExtractedPage:
    declarations = read_declarations(tree)
    title, title_method = choose_title(declarations, url)
    authors, authors_method = declared_authors(declarations)
    published, published_method = _publication(declarations, tree, url)
    description, description_method = declared_description(declarations)
    image, image_method = declared_image(declarations, url)
    categories, tags = declared_topics(declarations)
    text, text_method = _body(tree, url, declarations, title, authors, description, rules)
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
        return settle_day_with_url(settle_day_in_declared_region(declared, declarations, url), url), method
    # htmldate copies the tree it is given, so the shared tree stays intact.
    found = htmldate.find_date(tree, original_date=False, url=url, outputformat="%Y-%m-%d")
    if found and (parsed := parse_publication(found, today)) is not None:
        return PublicationTime(parsed.day, None), "htmldate"
    return None, "none"


@dataclass(frozen=True)
class _BodyContext:
    """What the repairs need to know about the page beside the text."""

    tree: HtmlElement
    headlines: tuple[str, ...]
    authors: tuple[str, ...]
    description: str | None
    link_texts: tuple[str, ...]


def _body(
    tree: HtmlElement,
    url: str | None,
    declarations: Declarations,
    title: str | None,
    authors: tuple[str, ...],
    description: str | None,
    rules: BodyRules,
) -> tuple[str, str]:
    headlines = [title or "", declarations.title_element, *declarations.headings]
    headlines += [value for name in ("og:title", "twitter:title") for value in declarations.meta.get(name, ())]
    context = _BodyContext(
        tree,
        tuple(clean_inline_text(headline) for headline in headlines),
        authors,
        description,
        tuple(link.text_content() for link in tree.iter("a")),
    )
    extracted = main_reading(tree, url, fast=rules.main_mode == "fast")
    main = _repaired(extracted, context, rules)
    if rules.comparison == "never":
        if main or rules.main_mode == "full":
            return (main, "trafilatura") if main else ("", "none")
        # The fast pass alone, as extraction worked before: full mode only when it is empty.
        rescued = _repaired(main_reading(tree, url), context, rules)
        return (rescued, "trafilatura fallbacks") if rescued else ("", "none")
    if rules.comparison == "doubtful":
        facts = page_facts(context.link_texts, (*context.headlines, clean_inline_text(description or "")))
        if not doubts(extracted, main, facts, rules.doubt_signs):
            return main, "trafilatura"
    candidates = [("trafilatura", main)]
    candidates += [(method, _repaired(text, context, rules)) for method, text in other_readings(tree, url)]
    method, text = candidates[most_agreed([text for _, text in candidates])]
    return (text, method) if text else ("", "none")


def _repaired(raw: str, context: _BodyContext, rules: BodyRules) -> str:
    """The repairs, in order, on one extractor's text: each removes a defect of a kind."""
    if not raw:
        return ""
    text = join_paragraphs(cleaned for line in raw.splitlines() if (cleaned := clean_inline_text(line)))
    if rules.headline_copies:
        text = drop_headline_copies(text, context.headlines)
    if rules.bylines:
        text = drop_bylines(text, context.authors)
    if rules.header_standfirst:
        text = _drop_header_standfirst(text, context.tree, context.description)
    if rules.link_paragraphs:
        text = drop_link_paragraphs(text, context.link_texts)
    if rules.furniture_lines:
        text = drop_furniture_lines(text)
    if rules.contact_lines:
        text = drop_contact_lines(text)
    if rules.repeated_paragraphs:
        text = drop_repeated_paragraphs(text)
    if rules.broken_hyphenation:
        text = join_broken_hyphenation(text)
    return text


def _drop_header_standfirst(text: str, tree: HtmlElement, description: str | None) -> str:
    """Remove a standfirst the page renders as a subheading above the article body.

    The declared description is often the standfirst (dek): a summary the CMS prints as an
    ``<h2>`` under the headline, in the article header, outside the element that holds the
    body paragraphs. Just as often it is the lead paragraph itself, a ``<p>`` inside that
    element, and then it is article text. Text alone cannot tell them apart, so the
    paragraph that starts like the description is dropped only when every place the page shows
    it is a heading outside the element holding the paragraphs that follow it.
    """
    folded_description = _locator(description or "")
    paragraphs = split_paragraphs(text)
    if not folded_description or len(paragraphs) < 2:
        return text
    head = next(
        (
            index
            for index, paragraph in enumerate(paragraphs[:_STANDFIRST_HEAD])
            if _locator(paragraph) == folded_description
        ),
        None,
    )
    if head is None:
        return text
    following = paragraphs[head + 1 : head + 1 + _CONTAINER_PROBES]
    located = _locate_blocks(tree, [paragraphs[head], *following])
    standfirst_blocks = located[0]
    body_blocks = [blocks[0] for blocks in located[1:] if blocks]
    if not standfirst_blocks or not body_blocks:
        return text
    container = _common_ancestor(body_blocks)
    if container is None:
        return text
    for block in standfirst_blocks:
        if block.tag not in _HEADINGS or any(ancestor is container for ancestor in block.iterancestors()):
            return text
    return join_paragraphs(paragraphs[:head] + paragraphs[head + 1 :])


def _locator(text: str) -> str:
    return " ".join(text.split()).casefold()[:_LOCATOR_CHARS]


def _locate_blocks(tree: HtmlElement, paragraphs: list[str]) -> list[list[HtmlElement]]:
    """For each paragraph, the block elements whose text starts like it, in one pass."""
    keys = [_locator(paragraph) for paragraph in paragraphs]
    found: list[list[HtmlElement]] = [[] for _ in keys]
    for element in tree.iter():
        if not isinstance(element.tag, str) or element.tag in _NOT_TEXT or not element.text:
            continue
        start = _locator(element.text)
        for index, key in enumerate(keys):
            if start == key and (block := _enclosing_block(element)) is not None:
                found[index].append(block)
    return found


def _enclosing_block(element: HtmlElement) -> HtmlElement | None:
    current: HtmlElement | None = element
    while current is not None and current.tag not in _BLOCKS:
        current = current.getparent()
    return current


def _common_ancestor(elements: list[HtmlElement]) -> HtmlElement | None:
    shared: list[HtmlElement] | None = None
    for element in elements:
        chain = [element, *element.iterancestors()]
        shared = chain if shared is None else [ancestor for ancestor in shared if any(ancestor is x for x in chain)]
    return shared[0] if shared else None
