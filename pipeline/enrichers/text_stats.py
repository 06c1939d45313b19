"""Word count and reading time."""

from __future__ import annotations

import math
import re
from typing import Any

from pipeline.enrichers.base import Enricher
from schemas import CleanedArticle

_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")  # don't, l\u2019eau, well-known: one word each


class TextStatsEnricher(Enricher):
    name = "text_stats"

    def __init__(self, words_per_minute: int = 230) -> None:
        if words_per_minute < 1:
            raise ValueError("words_per_minute must be positive")
        self._words_per_minute = words_per_minute

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        words = len(_WORD.findall(article.body))  # one C call instead of a Python step per word
        return {
            "word_count": words,
            "reading_time_seconds": math.ceil(words * 60 / self._words_per_minute),
        }
