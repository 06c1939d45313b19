"""Stop-word lists per language, and a cheap guess of which list fits a text.

Shared by the enrichers that score words (``keywords``, ``summary``, ``entities``'s
rules). The lists come from the ``stop-words`` package (installed data, 30-odd
languages). The guess only picks a list; it is no language detector and must never be
published as the article's language (``language`` does that).
"""

from __future__ import annotations

from collections import Counter

from stop_words import AVAILABLE_LANGUAGES, LANGUAGE_MAPPING, get_stop_words

# Enough words to tell the lists apart on news text, few enough to stay cheap per article.
_SAMPLE_WORDS = 120


class StopWords:
    def __init__(self, by_language: dict[str, frozenset[str]]) -> None:
        self._by_language = by_language
        self._languages_of: dict[str, tuple[str, ...]] = {}
        for language, words in by_language.items():
            for word in words:
                self._languages_of[word] = (*self._languages_of.get(word, ()), language)

    @classmethod
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
        votes: Counter[str] = Counter()
        for word in text[: _SAMPLE_WORDS * 8].casefold().split()[:_SAMPLE_WORDS]:
            votes.update(self._languages_of.get(word.strip(".,;:!?\"'()"), ()))
        if not votes:
            return None
        return votes.most_common(1)[0][0]

    def for_language(self, language: str | None) -> frozenset[str]:
        return self._by_language.get((language or "").split("-")[0], frozenset())

    def for_text(self, text: str, declared_language: str | None = None) -> frozenset[str]:
        words = self.for_language(declared_language)
        return words or self.for_language(self.guess_language(text))
