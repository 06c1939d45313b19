"""Key phrases of an article: runs of content words, scored by frequency, length and the title.

A small RAKE-like scorer (Rose et al., 2010) over the ``stop-words`` lists: no model,
linear in the text, cheap enough to run on every article. It must never return a stop
word alone or a phrase longer than ``max_words``.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.enrichers.base import Enricher, worker_resource
from pipeline.enrichers.stopwords import StopWords
from schemas import CleanedArticle

# Phrases break at punctuation as well as at stop words.
_CLAUSE = re.compile(r"[.,;:!?()\[\]{}\"\u201c\u201d\u00ab\u00bb\u2014\u2013|/]+|\s[-']\s|\n")
# News says what it is about in its lead; reading further costs time and adds the
# incidental phrases of later paragraphs.
_LEAD_CHARS = 2_500
_WORD = re.compile(r"[^\W_](?:[\w'\u2019-]*[^\W_])?")


class KeywordEnricher(Enricher):
    name = "keywords"

    def __init__(self, max_keywords: int = 8, max_words: int = 3) -> None:
        if max_keywords < 1 or max_words < 1:
            raise ValueError("max_keywords and max_words must be positive")
        self._max_keywords = max_keywords
        self._max_words = max_words

    @worker_resource
    def _stop_words(self) -> StopWords:
        return StopWords.load()

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        stop = self._stop_words.for_text(article.body, article.language)
        title_words = set(_WORD.findall(article.title.casefold()))
        counts: dict[str, int] = {}
        shown: dict[str, str] = {}
        for clause in _CLAUSE.split(f"{article.title}\n{article.body[:_LEAD_CHARS]}"):
            words = _WORD.findall(clause)
            folded_words = [w.casefold() for w in words]
            # Content words: not a stop word, not a number, longer than two letters.
            content = [len(w) > 2 and w not in stop and not w.isdigit() for w in folded_words]
            start = 0
            while start < len(words):
                if not content[start]:
                    start += 1
                    continue
                end = start + 1
                while end < len(words) and content[end] and end - start < self._max_words:
                    end += 1
                key = " ".join(folded_words[start:end])
                counts[key] = counts.get(key, 0) + 1
                shown.setdefault(key, " ".join(words[start:end]))
                start = end

        def score(key: str) -> float:
            # Repetition first; longer phrases say more; title words say what the article is about.
            parts = key.split()
            return counts[key] * (1 + 0.3 * (len(parts) - 1)) + 0.5 * sum(p in title_words for p in parts)

        keywords: list[str] = []
        for key in sorted(counts, key=score, reverse=True):
            if counts[key] < 2 and not title_words.intersection(key.split()):
                continue  # said once, and not in the title: incidental, not a key phrase
            if any(key in chosen.casefold() or chosen.casefold() in key for chosen in keywords):
                continue
            keywords.append(shown[key])
            if len(keywords) == self._max_keywords:
                break
        return {"keywords": keywords}
