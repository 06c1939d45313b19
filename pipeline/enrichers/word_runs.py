"""Word runs of a text as Python's regex finds them, found with NumPy instead.

The reading-time word count (``\\w+(?:['\u2019-]\\w+)*``) and the content fingerprint (the
``[^\\W_]+`` runs joined by spaces) ran a regex over every body, a regex step per
character. Here each character is looked up in a table of the regex's own word
characters, over the body's code points at once. The answers must stay the regex's,
character for character: the table is taken from ``re`` itself, and tests compare the two
on real texts. Built once per process (a fraction of a second) and never changed after.
"""

from __future__ import annotations

import functools
import re
import sys

import numpy as np
import numpy.typing as npt

_SPACE = np.uint32(ord(" "))
# What the word count lets join two word runs into one word: don't, l\u2019eau, well-known.
_APOSTROPHE, _RIGHT_QUOTE, _HYPHEN = (np.uint32(ord(c)) for c in "'\u2019-")


@functools.cache  # read-only once built (see pipeline/__init__.py)
def _letters_or_digits() -> npt.NDArray[np.bool_]:
    """For every code point, whether ``[^\\W_]`` matches it: ``\\w`` without the underscore."""
    # Decoded from one buffer: joining a million one-character strings would peak at ~80 MB.
    every_character = np.arange(sys.maxunicode + 1, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    table = np.zeros(sys.maxunicode + 1, dtype=bool)
    for run in re.finditer(r"[^\W_]+", every_character):
        table[run.start() : run.end()] = True
    table.flags.writeable = False
    return table


@functools.cache
def _word_characters() -> npt.NDArray[np.bool_]:
    """For every code point, whether ``\\w`` matches it."""
    table = _letters_or_digits().copy()
    table[ord("_")] = True
    table.flags.writeable = False
    return table


def load() -> None:
    """Build the tables now: from an enricher's ``setup``, not on the first article."""
    _word_characters()


def _code_points(text: str) -> npt.NDArray[np.uint32]:
    # surrogatepass: a lone surrogate (valid in a Python str) is one code point, as for re.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def count_words(text: str) -> int:
    """``len(re.findall(r"\\w+(?:['\u2019-]\\w+)*", text))``.

    Each match is a maximal chain of ``\\w`` runs linked by single joiners, so the count is
    the runs less the joiners standing between two word characters.
    """
    codes = _code_points(text)
    if not len(codes):
        return 0
    word = _word_characters()[codes]
    runs = int(word[0]) + int(np.count_nonzero(word[1:] & ~word[:-1]))
    inner = codes[1:-1]
    links = ((inner == _APOSTROPHE) | (inner == _RIGHT_QUOTE) | (inner == _HYPHEN)) & word[:-2] & word[2:]
    return runs - int(np.count_nonzero(links))


def joined_letter_runs(text: str) -> str:
    """``" ".join(re.findall(r"[^\\W_]+", text))``: every other run of characters becomes one space."""
    codes = _code_points(text)
    letters = _letters_or_digits()[codes]
    # The first character of each gap after a word stands for the whole gap...
    gap = ~letters
    gap[1:] &= letters[:-1]
    gap[:1] = False
    # ...unless no word follows it.
    last = np.flatnonzero(letters)
    if len(last):
        gap[last[-1] + 1 :] = False
    kept = np.where(letters, codes, _SPACE)[letters | gap]
    return kept.tobytes().decode("utf-32-le", "surrogatepass")
