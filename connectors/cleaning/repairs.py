"""Text repairs for defects that extractors and sources leave in article bodies.

Each function takes text and returns repaired text; none of them may invent content or
raise on odd input (empty, huge, mixed-script): a repair that does not apply returns its
input unchanged.
"""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
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
