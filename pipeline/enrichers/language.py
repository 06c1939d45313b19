"""Language of the article body with a confidence, by py3langid (offline, model shipped in the wheel)."""

from __future__ import annotations

import functools
from typing import Any

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from pipeline.enrichers.base import Enricher, worker_resource
from schemas import CleanedArticle, LanguageGuess

# A few paragraphs are enough for a confident guess; classifying more costs time (the
# classifier is linear in text length) without changing the answer on news articles.
_SAMPLE_CHARS = 800


@functools.cache  # read-only once loaded (see pipeline/__init__.py): half a second saved per micro-batch
def _shared_identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class LanguageEnricher(Enricher):
    name = "language"

    @worker_resource
    def _identifier(self) -> LanguageIdentifier:
        return _shared_identifier()

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        code, probability = self._identifier.classify(f"{article.title}\n{article.body[:_SAMPLE_CHARS]}")
        return {"detected_language": LanguageGuess(code=code, confidence=round(float(probability), 4))}
