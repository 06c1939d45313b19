"""Language of the article body with a confidence, by py3langid (offline, model shipped in the wheel)."""

from __future__ import annotations

from typing import Any

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from pipeline.enrichers.base import Enricher
from schemas import CleanedArticle, LanguageGuess

# A few paragraphs are enough for a confident guess; classifying more costs time (the
# classifier is linear in text length) without changing the answer on news articles.
_SAMPLE_CHARS = 800


class LanguageEnricher(Enricher):
    name = "language"

    def __init__(self) -> None:
        self._identifier: LanguageIdentifier | None = None

    def setup(self) -> None:
        if self._identifier is None:
            self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        if self._identifier is None:
            self.setup()
        assert self._identifier is not None
        code, probability = self._identifier.classify(f"{article.title}\n{article.body[:_SAMPLE_CHARS]}")
        return {"detected_language": LanguageGuess(code=code, confidence=round(float(probability), 4))}

    def __getstate__(self) -> dict[str, Any]:
        # The model is loaded on each worker in setup(), never shipped inside the pickled DoFn.
        return {**self.__dict__, "_identifier": None}
