"""Where the article body comes from: three readings of the page, and the choice between them.

Trafilatura (its full mode: the main extractor with its own readability/jusText check)
reads most article pages well. On some it still returns the wrong block: a navigation
table, a "SECTIONS" menu, a teaser for another post, or furniture that the repairs then
delete. Two other algorithms read the same page differently: readability (trafilatura's
fork, which scores containers by their paragraphs) and jusText (which classifies each
paragraph by its stop words and link density). Each fails in its own way, and they rarely
fail the same way on one page.

So trafilatura's text is checked for the signs of a wrong block (``doubts``); only when
one shows are the other readings made, and the candidate that agrees most with the others
is kept (``most_agreed``): a minimum-Bayes-risk choice, each candidate scored by its
expected word-shingle F1 against the other candidates. It needs no threshold fitted to any
reference set, and a menu or a comment thread that one algorithm swept in is outvoted by
the two that left it out. (Its known weakness: when readability and jusText sweep in the
same extra block, they outvote a main reading that was right.)

Nothing here may modify the tree it is given (every reading works on its own copy), reach
the network, or know which host or reference set a page comes from.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass

import trafilatura
from lxml.html import HtmlElement
from trafilatura.external import justext_rescue, sanitize_tree, try_readability
from trafilatura.htmlprocessing import prune_unwanted_nodes, tree_cleaning
from trafilatura.settings import Extractor
from trafilatura.xml import xmltotxt
from trafilatura.xpaths import RAW_TREE_PRUNE_XPATH, REMOVE_COMMENTS_AND_LISTS_XPATH

LOGGER = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
# Agreement is measured on the unit extraction quality is measured in: runs of four words,
# counted with multiplicity, so a candidate that repeats or adds a block pays for it.
_SHINGLE_WORDS = 4

# --- the signs of a wrong block. Each is a plain property of the text, set at a round
# value that marks an unusual article rather than fitted to a reference set; a false alarm
# only costs the comparison, never the body, since the main reading is one of the candidates.
# Links cover most of the body's characters: a menu or a list of teasers, not prose. (At a
# third, link-rich roundups tripped it on one set while helping the other, see the ablation.)
_LINK_SHARE = 0.5
# Lines of fewer words than a sentence has hold most of the body: list items and headings.
_FRAGMENT_WORDS = 8
_FRAGMENT_SHARE = 0.5
# The declared headline and description share almost none of their words with the body.
_HEADLINE_WORD_SHARE = 0.25
_MIN_HEADLINE_WORDS = 3
# The repairs removed more than this share of what the extractor returned.
_REPAIRED_AWAY_SHARE = 0.5


EMPTY = "empty"
REPAIRED_AWAY = "repaired away"
LINK_TEXT = "link text"
LISTS_OR_HEADINGS = "lists or headings"
FAR_FROM_THE_HEADLINE = "far from the headline"
# The signs ``doubts`` can look for. An empty main reading is always doubtful: it is never
# published while another reading holds an article. "Short for the page" (under 1,500
# characters and a fifth of the visible text) was tried and dropped: it mostly flags news
# briefs on busy pages, and cost one reference set what it gave the other.
SIGNS = (REPAIRED_AWAY, LINK_TEXT, LISTS_OR_HEADINGS, FAR_FROM_THE_HEADLINE)


@dataclass(frozen=True)
class PageFacts:
    """What a page says about itself, beside its body, that can show a reading is wrong."""

    link_texts: frozenset[str]
    headlines: tuple[str, ...]


def page_facts(link_texts: Iterable[str], headlines: Iterable[str]) -> PageFacts:
    folded_links = frozenset(_fold(link) for link in link_texts if _WORD.search(link))
    return PageFacts(folded_links, tuple(headline for headline in headlines if headline))


def main_reading(tree: HtmlElement, url: str | None, *, fast: bool = False) -> str:
    """Trafilatura's reading, comments left out.

    By default its full mode: the main extractor, checked by trafilatura's own comparison
    with readability and jusText and its recall retry. ``fast`` is the main extractor alone.
    """
    # bare_extraction works on its own copy of a tree it is given, so the shared tree stays intact.
    document = trafilatura.bare_extraction(tree, url=url, include_comments=False, with_metadata=False, fast=fast)
    return getattr(document, "text", None) or ""


def other_readings(tree: HtmlElement, url: str | None) -> list[tuple[str, str]]:
    """Readability's and jusText's reading of the page, comments and follow-up articles pruned first.

    Both get the page as trafilatura prepares it for them with comments off, so neither can
    bring back the reader comments the main extractor leaves out.
    """
    options = Extractor(comments=False, url=url)
    pruned = prune_unwanted_nodes(deepcopy(tree), RAW_TREE_PRUNE_XPATH)
    pruned = prune_unwanted_nodes(pruned, REMOVE_COMMENTS_AND_LISTS_XPATH)
    readings: list[tuple[str, str]] = []
    try:
        summary = try_readability(deepcopy(pruned))
        cleaned, _ = sanitize_tree(summary, options)
        readings.append(("readability", xmltotxt(cleaned, False)))
    except Exception:  # one reading failing leaves the others; the page is not lost
        LOGGER.warning("readability reading failed, comparing without it: %s", url, exc_info=True)
    try:
        body, _ = justext_rescue(tree_cleaning(pruned, options), options)
        readings.append(("justext", xmltotxt(body, False)))
    except Exception:
        LOGGER.warning("jusText reading failed, comparing without it: %s", url, exc_info=True)
    return readings


def doubts(extracted: str, repaired: str, page: PageFacts, signs: Collection[str] = SIGNS) -> list[str]:
    """Why the main reading may be the wrong block of the page; empty when nothing looks wrong.

    ``extracted`` is the reading as the extractor returned it, ``repaired`` after the
    repairs; only the ``signs`` named are looked for (all of them in production).
    """
    if not repaired.strip():
        return [EMPTY]
    lines = [line for line in repaired.splitlines() if _WORD.search(line)]
    characters = sum(len(line) for line in lines) or 1
    checks = {
        REPAIRED_AWAY: lambda: len(repaired) < _REPAIRED_AWAY_SHARE * len(extracted),
        LINK_TEXT: lambda: (
            bool(page.link_texts) and _link_characters(lines, page.link_texts) >= _LINK_SHARE * characters
        ),
        LISTS_OR_HEADINGS: lambda: _fragment_characters(lines) > _FRAGMENT_SHARE * characters,
        FAR_FROM_THE_HEADLINE: lambda: _far_from_headlines(repaired, page.headlines),
    }
    return [sign for sign, check in checks.items() if sign in signs and check()]


def most_agreed(candidates: Sequence[str]) -> int:
    """The index of the candidate with the highest summed shingle F1 against the others.

    An empty candidate scores below every non-empty one, so the choice is empty only when
    every candidate is. Ties keep the earlier candidate: the caller lists the main reading first.
    """
    shingled = [_shingles(text) for text in candidates]

    def agreement(index: int) -> float:
        if not shingled[index]:
            return -1.0
        return sum(_f1(shingled[index], other) for position, other in enumerate(shingled) if position != index)

    return max(range(len(candidates)), key=lambda index: (agreement(index), -index))


def _shingles(text: str) -> Counter[str]:
    # The same unit as the reference sets' metric, written here because connectors never
    # import the benchmark harness (and the harness must not share code with what it scores).
    words = _WORD.findall(text)
    if not words:
        return Counter()
    count = max(1, len(words) - _SHINGLE_WORDS + 1)
    return Counter(" ".join(words[start : start + _SHINGLE_WORDS]) for start in range(count))


def _f1(left: Counter[str], right: Counter[str]) -> float:
    if not left or not right:
        return 0.0
    shared = sum((left & right).values())
    return 2 * shared / (sum(left.values()) + sum(right.values()))


def _fragment_characters(lines: list[str]) -> int:
    """Characters of the lines too short to be a sentence: list items, headings, labels."""
    return sum(len(line) for line in lines if len(_WORD.findall(line)) < _FRAGMENT_WORDS)


def _link_characters(lines: list[str], folded_links: frozenset[str]) -> int:
    """Characters of the body's lines that are the text of one of the page's links."""
    covered = 0
    for line in lines:
        folded = _fold(line)
        if folded in folded_links:
            covered += len(line)
            continue
        mask = bytearray(len(folded))
        for link in folded_links:
            if len(link) > len(folded):
                continue
            start = folded.find(link)
            while start != -1:
                mask[start : start + len(link)] = b"\x01" * len(link)
                start = folded.find(link, start + len(link))
        covered += sum(mask)
    return covered


def _far_from_headlines(text: str, headlines: tuple[str, ...]) -> bool:
    body_words = {word.casefold() for word in _WORD.findall(text)}
    shares = []
    for headline in headlines:
        words = {word.casefold() for word in _WORD.findall(headline)}
        if len(words) >= _MIN_HEADLINE_WORDS:
            shares.append(len(words & body_words) / len(words))
    return bool(shares) and max(shares) < _HEADLINE_WORD_SHARE


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()
