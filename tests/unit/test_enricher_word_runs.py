"""The NumPy word runs give what the regexes they replace gave, on real news and on the edges."""

from __future__ import annotations

import re
import unicodedata

import pytest

from newswire.testing.dedup_corpus import real_texts
from pipeline.enrichers.word_runs import count_words, joined_letter_runs
from tests.dedup_articles import REAL_TEXTS

# The definitions the word count and the fingerprint had before: the specification.
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")
_LETTER_RUN = re.compile(r"[^\W_]+")

_EDGES = [
    "",
    " ",
    "_",
    "a",
    "a_b __x__ _a_",
    "don't l\u2019eau well-known a-b-c",
    "a--b -a- 'a' x'-y a'' ''b a-",
    "\ufb01ne \ufb02ow Stra\u00dfe \u0130stanbul",  # ligatures, sharp s, dotted capital I
    "\U0001f600 a\U0001f600b \U0001d400\U0001d401",  # outside the BMP: emoji, mathematical letters
    "\u0661\u0662\u0663 \u0664\u0665, \u00bd \u2460",  # Arabic-Indic digits, fractions, circled digits
    "e\u0301te\u0301 \u0915\u093f",  # combining marks
    "tab\tnew\nline\u00a0nbsp\u2003em",
    "\ud800 lone \udfff surrogates",
]


def _bodies() -> list[str]:
    bodies = [body for _, body in real_texts(minimum_words=0, ground_truth=REAL_TEXTS)]
    assert len(bodies) > 100
    return bodies


@pytest.mark.parametrize("text", _EDGES)
def test_the_edges_count_and_join_as_the_regexes_do(text: str) -> None:
    assert count_words(text) == len(_WORD.findall(text))
    assert joined_letter_runs(text) == " ".join(_LETTER_RUN.findall(text))


def test_real_news_counts_and_joins_as_the_regexes_do() -> None:
    words = 0
    for body in _bodies():
        folded = unicodedata.normalize("NFKC", body).casefold()  # what the fingerprint joins
        assert count_words(body) == len(_WORD.findall(body))
        assert joined_letter_runs(folded) == " ".join(_LETTER_RUN.findall(folded))
        assert joined_letter_runs(body) == " ".join(_LETTER_RUN.findall(body))
        words += count_words(body)
    assert words > 50_000
