"""Stop-word lists per language, and a cheap guess of which list fits a text.

Shared by the enrichers that score words (``keywords``, ``summary``, ``entities``'s
rules) and by the gazetteer, which keeps no city named like a common word. The lists
come from the ``stop-words`` package (installed data, 30-odd languages). The guess only
picks a list; it is no language detector and must never be published as the article's
language (``language`` does that).
"""

from __future__ import annotations

import functools

from stop_words import AVAILABLE_LANGUAGES, LANGUAGE_MAPPING, get_stop_words  # type: ignore[import-untyped]

# Enough words to tell the lists apart on news text, few enough to stay cheap per article.
_SAMPLE_WORDS = 120


class StopWords:
    def __init__(self, by_language: dict[str, frozenset[str]]) -> None:
        self._by_language = by_language
        self._last: tuple[str | None, str | None] = (None, None)

    @classmethod
    # One of the two process-wide caches the pipeline keeps (see pipeline/__init__.py): read-only once
    # built, so the enrichers of one worker share it instead of building it thrice.
    @functools.cache
    def load(cls) -> StopWords:
        codes = {name: code for code, name in LANGUAGE_MAPPING.items()}
        return cls(
            {
                codes.get(name, name): frozenset(w.casefold() for w in get_stop_words(name))
                for name in AVAILABLE_LANGUAGES
            }
        )

    def guess_language(self, text: str) -> str | None:
        """ISO 639-1 code of the list that covers most of the text's first words, if any does."""
        last_text, last_guess = self._last
        if text == last_text:  # keywords, summary and entities ask in turn about the same body
            return last_guess
        sample = {w.strip(".,;:!?\"'()") for w in text[: _SAMPLE_WORDS * 8].casefold().split()[:_SAMPLE_WORDS]}
        # One set intersection per list runs in C; counting word by word in Python cost more than the rest.
        hits, language = max((len(sample & words), language) for language, words in self._by_language.items())
        guess = language if hits else None
        self._last = (text, guess)
        return guess

    def of_every_language(self) -> frozenset[str]:
        return frozenset().union(*self._by_language.values())

    def for_language(self, language: str | None) -> frozenset[str]:
        return self._by_language.get((language or "").split("-")[0], frozenset())

    def for_text(self, text: str, declared_language: str | None = None) -> frozenset[str]:
        words = self.for_language(declared_language)
        return words or self.for_language(self.guess_language(text))
