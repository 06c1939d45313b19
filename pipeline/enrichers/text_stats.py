"""Word count and reading time."""

from __future__ import annotations

import math
from typing import Any

from pipeline.enrichers import word_runs
from pipeline.enrichers.base import Enricher
from schemas import CleanedArticle


class TextStatsEnricher(Enricher):
    name = "text_stats"

    def __init__(self, words_per_minute: int = 230) -> None:
        if words_per_minute < 1:
            raise ValueError("words_per_minute must be positive")
        self._words_per_minute = words_per_minute

    def setup(self) -> None:
        super().setup()
        word_runs.load()

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        words = word_runs.count_words(article.body)  # don't, l\u2019eau, well-known: one word each
        return {
            "word_count": words,
            "reading_time_seconds": math.ceil(words * 60 / self._words_per_minute),
        }
