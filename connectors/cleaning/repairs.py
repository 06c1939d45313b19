"""Text repairs for defects that extractors and sources leave in article bodies.

Each function takes text and returns repaired text; none of them may invent content or
raise on odd input (empty, huge, mixed-script): a repair that does not apply returns its
input unchanged.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

import ftfy

_WHITESPACE = re.compile(r"\s+")
_WORD_CHARS = re.compile(r"\w")
# What may sit between a glued title and the paragraph it swallowed: nothing, spaces, or
# a separator such as a colon or dash that some CMSs insert.
_GLUE_SEPARATORS = " \t\u00a0:;|-\u2013\u2014"


def _fold(text: str) -> str:
    """A comparison form: NFKC, case-folded, whitespace collapsed."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def strip_glued_title(title: str, paragraph: str) -> str:
    """Remove ``title`` from the start of ``paragraph`` when a source glued them together.

    Handles "TitleThe body…", "Title The body…" and "Title: The body…", with whitespace,
    case and Unicode compatibility differences between the two copies. A paragraph that is
    nothing but the title is returned as an empty string (a duplicated headline).
    """
    folded_title = _fold(title)
    if not folded_title or not paragraph:
        return paragraph
    # Walk the paragraph character by character so the cut lands at the right original
    # offset even when whitespace or compatibility forms differ from the title's.
    consumed = 0
    matched = ""
    for index, char in enumerate(paragraph):
        piece = _fold(char) if not char.isspace() else " "
        if piece == " " and (not matched or matched.endswith(" ")):
            continue
        candidate = matched + piece
        if not folded_title.startswith(candidate):
            return paragraph
        matched = candidate
        consumed = index + 1
        if matched == folded_title:
            break
    if matched != folded_title:
        return paragraph
    rest = paragraph[consumed:]
    if rest[:1].islower() and paragraph[consumed - 1].isalnum():
        # "Foo" + "bar is…" is the word "Foobar", not a glued title: a swallowed paragraph
        # starts a sentence, so it does not continue the title's last word in lower case.
        return paragraph
    return rest.lstrip(_GLUE_SEPARATORS + "\n\r")


# --- inline text -------------------------------------------------------------------------

_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
# Characters that render as nothing yet split words for tokenisers and search: soft hyphen,
# zero-width space/joiners, word joiner, BOM.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
# Byte sequences that only appear when UTF-8 was decoded as latin-1/cp1252 ("Ã©", "â€™").
_MOJIBAKE_HINT = re.compile(
    "[\u00c2\u00c3\u00c5\u00e2][\u0080-\u00bf\u2018-\u203a\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc]"
)


def clean_inline_text(text: str) -> str:
    """One line of display text: entities decoded, mojibake undone, whitespace collapsed.

    Used for titles, bylines and each paragraph. Text without a defect comes back with only
    its whitespace normalised.
    """
    if not text:
        return ""
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    if _MOJIBAKE_HINT.search(text):
        text = ftfy.fix_encoding(text)
    text = text.translate(_INVISIBLE)
    return _WHITESPACE.sub(" ", text).strip()


# --- body paragraphs ---------------------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_HAS_WORD = re.compile(r"\w")
# A paragraph ending "inter-" followed by one starting "national": a hard line break fell
# inside a hyphenated word (print-era text, PDF conversions). A following capital or digit
# means a real compound ("COVID-" + "19", "pre-" + "Christmas") and is left alone.
_BROKEN_HYPHEN = re.compile(r"(?<=[^\W\d_]{2})[-\u2010]\n+(?=[^\W\d_A-Z]{2})")
# Whole lines that are page furniture, not article text: sharing and navigation prompts,
# advertising labels, newsletter and comment boxes. Anchored on both ends so a sentence
# that merely mentions sharing is kept. Kept to phrases whose meaning is unambiguous.
_FURNITURE = re.compile(
    r"""(?ix)^[\W_]*(?:
        share(?:\ (?:this|on\ \w+|the\ story|article|via\ \w+))?
      | (?:tweet|pin|email|print|save|copy\ link|comments?)(?:\ this)?(?:\ (?:article|story|page|link))?
      | (?:read|see|view|show|load)\ (?:more|less|all|full\ (?:story|article))(?:\ \w+){0,3}
      | (?:related|recommended|more\ from\ \w+|most\ (?:read|popular)|trending)
        (?:\ (?:articles?|stories|content|coverage|links|news|posts?))?
      | (?:advertisement|advertising|sponsored(?:\ content)?|ad|ads
        |story\ continues\ below(?:\ advertisement)?|continue\ reading(?:\ below)?)
      | (?:sign\ up|subscribe|register)(?:\ (?:now|here|today|for\ (?:free|our\ newsletters?)))?
      | (?:follow|like)\ us(?:\ on\ \w+)?
      | (?:image|photo|video)\ (?:copyright|caption|credit|source)(?:\ \S+)?
      | (?:thanks?\ (?:you\ )?for\ (?:signing\ up|subscribing|reading))
      | (?:order\ reprints|print\ article|skip\ (?:to\ )?(?:content|advertisement)|back\ to\ top|top\ of\ page)
      | (?:all\ rights\ reserved|copyright\ ©?.{0,60}|©.{0,60})
      | (?:tags?|topics?|filed\ under|categories)
      | (?:don'?t\ miss|you\ (?:may|might)\ also\ (?:like|enjoy)|like\ this\ (?:story|article)\??(?:\ share\ it.*)?)
    )[\W_]*$"""
)
# A teaser for another article: an upper-case or colon-marked prompt followed by its headline
# ("READ MORE: Storm hits coast", "Related: ..."). The colon is required so sentences that
# start "Read more about..." stay.
_TEASER = re.compile(r"(?i)^\W*(?:read\ more|see\ more|see\ also|also\ read|related|more|watch|listen)\s*:\s*\S", re.X)
_BYLINE = re.compile(r"(?i)^(?:by|von|par|por|di|door|av|de|от|автор)\s+\S")
_BYLINE_MAX_WORDS = 12
_HEAD_PARAGRAPHS = 4
_FURNITURE_MAX_CHARS = 80
_TEASER_MAX_CHARS = 160
_GLUED_HEADLINE_MIN_WORDS = 4
# What marks an author's contact line or a "follow us" prompt: an e-mail address, a social
# handle, or an invitation to follow someone on a social network.
_CONTACT = re.compile(
    r"""(?ix)[\w.+-]+@[\w-]+\.\w[\w.]*
      | \bfollow\b.{0,60}?\b(?:twitter|facebook|instagram)\b
      | \btwitter\b.{0,12}@\w
      | \bon\ twitter\ at\b"""
)
_TAIL_PARAGRAPHS = 3
_CONTACT_MAX_CHARS = 300
_LINK_MIN_WORDS = 3
_LINK_COVERAGE = 0.7


def split_paragraphs(text: str) -> list[str]:
    return [paragraph.strip() for paragraph in _PARAGRAPH_BREAK.split(text) if paragraph.strip()]


def join_paragraphs(paragraphs: Iterable[str]) -> str:
    return "\n\n".join(paragraphs)


def join_broken_hyphenation(text: str) -> str:
    """Rejoin words a line break split at a hyphen ("inter-\\nnational" -> "international")."""
    return _BROKEN_HYPHEN.sub("", text)


def drop_furniture_lines(text: str) -> str:
    """Remove paragraphs that are sharing prompts, ad labels, "read more" and the like,
    and paragraphs with no word character at all (bullets, separators)."""
    return join_paragraphs(
        paragraph
        for paragraph in split_paragraphs(text)
        if _HAS_WORD.search(paragraph)
        and not (len(paragraph) <= _FURNITURE_MAX_CHARS and _FURNITURE.match(paragraph))
        and not (len(paragraph) <= _TEASER_MAX_CHARS and _TEASER.match(paragraph))
    )


def drop_headline_copies(text: str, headlines: Iterable[str]) -> str:
    """Remove the headline an extractor left at the head of the body, alone or glued on.

    Only the first few paragraphs are examined: a headline repeated further down (a pull
    quote, a related link) is no longer the page header.
    """
    candidates = sorted(
        {headline for headline in headlines if _WORD_CHARS.search(headline or "")}, key=len, reverse=True
    )
    paragraphs = split_paragraphs(text)
    for index in range(min(_HEAD_PARAGRAPHS, len(paragraphs))):
        for headline in candidates:
            if _fold(headline) != _fold(paragraphs[index]) and len(headline.split()) < _GLUED_HEADLINE_MIN_WORDS:
                # A short headline ("Apple") also begins ordinary sentences ("Apple Inc. said");
                # only a paragraph that is exactly the headline is then a copy of it.
                continue
            repaired = strip_glued_title(headline, paragraphs[index])
            if repaired != paragraphs[index]:
                paragraphs[index] = repaired
                break
    return join_paragraphs(paragraph for paragraph in paragraphs if paragraph)


def drop_bylines(text: str, authors: Iterable[str]) -> str:
    """Remove a short byline paragraph ("By Jane Doe", or just the author's name) near the top."""
    folded_authors = {_fold(author) for author in authors if author}
    paragraphs = split_paragraphs(text)
    kept = []
    for index, paragraph in enumerate(paragraphs):
        if index < _HEAD_PARAGRAPHS and _is_byline(paragraph, folded_authors):
            continue
        kept.append(paragraph)
    return join_paragraphs(kept)


def _is_byline(paragraph: str, folded_authors: set[str]) -> bool:
    if len(paragraph.split()) > _BYLINE_MAX_WORDS or paragraph.rstrip().endswith((".", "?", "!", ":")):
        return False
    folded = _fold(paragraph)
    if folded in folded_authors:
        return True
    if not _BYLINE.match(paragraph):
        return False
    # "By Jane Doe" must name someone: the rest is mostly capitalised words, or a known author.
    rest = paragraph.split(None, 1)[1]
    if any(author and author in folded for author in folded_authors):
        return True
    words = [word for word in re.findall(r"[^\W\d_][\w'.-]*", rest)]
    capitalised = [word for word in words if word[:1].isupper()]
    return bool(words) and len(capitalised) >= max(1, len(words) // 2)


def drop_repeated_paragraphs(text: str) -> str:
    """Keep one of two identical consecutive paragraphs (a standfirst rendered both as
    summary and as first paragraph, a caption shown above and below its image).

    Only back-to-back copies go: recipes, schedules and lists legitimately repeat lines
    ("Pre-workout meal") further apart, and those repeats are content.
    """
    kept: list[str] = []
    for paragraph in split_paragraphs(text):
        if kept and _fold(kept[-1]) == _fold(paragraph):
            continue
        kept.append(paragraph)
    return join_paragraphs(kept)


def drop_contact_lines(text: str) -> str:
    """Remove the author's contact line and "follow us" prompts CMSs append after the story.

    Only short paragraphs among the last few are examined: an address or a handle quoted in
    the middle of the story is part of it.
    """
    paragraphs = split_paragraphs(text)
    tail = len(paragraphs) - _TAIL_PARAGRAPHS
    return join_paragraphs(
        paragraph
        for index, paragraph in enumerate(paragraphs)
        if index < tail or len(paragraph) > _CONTACT_MAX_CHARS or not _CONTACT.search(paragraph)
    )


def drop_link_paragraphs(text: str, link_texts: Iterable[str]) -> str:
    """Remove paragraphs made mostly of the page's link texts: teasers for other articles.

    CMSs insert "related" and "don't miss" blocks into and after the article as paragraphs
    or list items whose text is the headline of another page, linked. Prose with an inline
    link keeps most of its text outside the link, so a paragraph is dropped only when links
    cover at least ``_LINK_COVERAGE`` of its characters. Only links of a few words count:
    short ones ("here", "Reuters") are inline references, not headlines.
    """
    # Link texts are cleaned like the paragraphs were, so entities and invisible characters
    # cannot hide a match.
    folded_links = {_fold(clean_inline_text(link)) for link in link_texts if len(link.split()) >= _LINK_MIN_WORDS}
    if not folded_links:
        return text
    return join_paragraphs(
        paragraph
        for paragraph in split_paragraphs(text)
        if _link_coverage(_fold(paragraph), folded_links) < _LINK_COVERAGE
    )


def _link_coverage(paragraph: str, folded_links: set[str]) -> float:
    if not paragraph:
        return 0.0
    covered = bytearray(len(paragraph))
    for link in folded_links:
        start = paragraph.find(link)
        while start != -1:
            covered[start : start + len(link)] = b"\x01" * len(link)
            start = paragraph.find(link, start + len(link))
    return sum(covered) / len(paragraph)
