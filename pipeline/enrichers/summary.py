"""A short extractive summary: the few sentences of the article that best cover its words.

Scores each sentence by the document frequency of its content words, with a bonus for
the lead (news puts the point first), and returns the best ones in article order. It
must never write text of its own: every summary sentence is a sentence of the body.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pipeline.enrichers.base import Enricher, worker_resource
from pipeline.enrichers.stopwords import StopWords
from schemas import CleanedArticle

# A sentence ends at . ! ? (or the CJK full stops) followed by space and a capital, digit,
# quote or non-Latin letter; "Mr. Smith" and "U.S. officials" are kept whole by _ABBREVIATION.
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"'\u201d\u2019)]?\s+(?=[\"'\u201c\u2018(]?[^\W_a-z])")
_ABBREVIATION = re.compile(r"(?:\b[A-Z][a-z]{0,3}|\b(?:[A-Za-z]\.){1,3}[A-Za-z]?)\.$")
_WORD = re.compile(r"\w+")
_TERMINAL = ".!?\u2026\"'\u201d\u2019\u00bb)\u3002\uff01\uff1f"
# News puts its point first (the "lead-3" summary is a strong baseline for news), so the
# sentences of the first few paragraphs are the candidates; this also bounds the cost.
_LEAD_CHARS = 2_500
_MIN_SENTENCE_CHARS = 40
_MAX_SENTENCE_CHARS = 600


class SummaryEnricher(Enricher):
    name = "summary"

    def __init__(self, max_sentences: int = 3) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be positive")
        self._max_sentences = max_sentences

    @worker_resource
    def _stop_words(self) -> StopWords:
        return StopWords.load()

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        stop = self._stop_words.for_text(article.body, article.language)
        sentences = [s for s in sentences_of(article.body[:_LEAD_CHARS]) if len(s) >= _MIN_SENTENCE_CHARS]
        sentences = [s for s in sentences if len(s) <= _MAX_SENTENCE_CHARS]
        # Captions, credits and bylines ("22/11/2020 - Fonte: Agência Brasil") end without a full
        # stop; keep them only when too little else is left.
        finished = [s for s in sentences if s[-1] in _TERMINAL]
        if len(finished) >= self._max_sentences:
            sentences = finished
        # A headline repeated as the first line must not fill two of the few places.
        seen: set[str] = set()
        distinct = []
        for sentence in sentences:
            key = " ".join(_WORD.findall(sentence.casefold()))
            if key not in seen:
                seen.add(key)
                distinct.append(sentence)
        sentences = distinct
        if len(sentences) <= self._max_sentences:
            return {"extractive_summary": sentences}
        words_of = [[w for w in _WORD.findall(s.casefold()) if w not in stop and not w.isdigit()] for s in sentences]
        frequency = Counter(w for words in words_of for w in set(words))
        title_words = set(_WORD.findall(article.title.casefold())) - stop
        scores = []
        for position, words in enumerate(words_of):
            if not words:
                scores.append(0.0)
                continue
            coverage = sum(frequency[w] for w in set(words)) / (len(set(words)) ** 0.5 * max(frequency.values()))
            lead = 1.0 / (1 + position)  # the first sentence scores +1, the second +0.5 ...
            scores.append(coverage + lead + 0.2 * len(title_words.intersection(words)))
        best = sorted(sorted(range(len(sentences)), key=lambda i: -scores[i])[: self._max_sentences])
        return {"extractive_summary": [sentences[i] for i in best]}


def sentences_of(text: str) -> list[str]:
    sentences: list[str] = []
    for paragraph in text.split("\n"):
        pending = ""
        for piece in _SENTENCE_END.split(paragraph.strip()):
            pending = f"{pending} {piece}" if pending else piece
            if not _ABBREVIATION.search(pending.rstrip("\"'\u201d\u2019)")):
                sentences.append(pending.strip())
                pending = ""
        if pending.strip():
            sentences.append(pending.strip())
    return [s for s in sentences if s]
