"""Key phrases of an article: runs of content words, scored by frequency, length and the title.

A small RAKE-like scorer (Rose et al., 2010) over the ``stop-words`` lists: no model,
linear in the text, cheap enough to run on every article. It must never return a stop
word alone or a phrase longer than ``max_words``.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.enrichers.base import Enricher
from pipeline.enrichers.stopwords import StopWords
from schemas import CleanedArticle

# Phrases break at punctuation as well as at stop words.
_CLAUSE = re.compile(r"[.,;:!?()\[\]{}\"\u201c\u201d\u00ab\u00bb\u2014\u2013|/]+|\s[-']\s|\n")
_WORD_EDGES = "'\u2019\u2018-*#"


class KeywordEnricher(Enricher):
    name = "keywords"

    def __init__(self, max_keywords: int = 8, max_words: int = 3) -> None:
        if max_keywords < 1 or max_words < 1:
            raise ValueError("max_keywords and max_words must be positive")
        self._max_keywords = max_keywords
        self._max_words = max_words
        self._stop_words: StopWords | None = None

    def setup(self) -> None:
        if self._stop_words is None:
            self._stop_words = StopWords.load()

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        if self._stop_words is None:
            self.setup()
        assert self._stop_words is not None
        stop = self._stop_words.for_text(article.body, article.language)
        title_words = {w.strip(_WORD_EDGES) for w in article.title.casefold().split()}
        scores: dict[str, float] = {}
        shown: dict[str, str] = {}
        for clause in _CLAUSE.split(f"{article.title}\n{article.body}"):
            phrase: list[str] = []
            for word in [*clause.split(), ""]:  # the empty word flushes the last phrase
                bare = word.strip(_WORD_EDGES)
                folded = bare.casefold()
                if bare and len(bare) > 2 and folded not in stop and not bare.isdigit() and len(phrase) < self._max_words:
                    phrase.append(bare)
                    continue
                if phrase:
                    key = " ".join(p.casefold() for p in phrase)
                    # Longer phrases are rarer but say more; title words say what the article is about.
                    in_title = sum(1 for p in phrase if p.casefold() in title_words)
                    scores[key] = scores.get(key, 0.0) + 1.0 + 0.6 * (len(phrase) - 1) + 0.5 * in_title
                    shown.setdefault(key, " ".join(phrase))
                phrase = [bare] if bare and folded not in stop and len(bare) > 2 and not bare.isdigit() else []
        keywords: list[str] = []
        for key in sorted(scores, key=lambda k: -scores[k]):
            if scores[key] < 2.0:
                break  # said once, outside the title: not a key phrase
            if any(key in chosen.casefold() or chosen.casefold() in key for chosen in keywords):
                continue
            keywords.append(shown[key])
            if len(keywords) == self._max_keywords:
                break
        return {"keywords": keywords}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_stop_words": None}
