"""The enricher contract.

An enricher reads a ``CleanedArticle`` and returns values for fields of
``EnrichedArticle``. It may raise on a bad article: the Enrich stage records the failure
on that article and lets it through. Heavy resources (models, gazetteers) are loaded in
``setup``, which runs once per worker, never per element and never at import time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from schemas import CleanedArticle


class Enricher(ABC):
    name: ClassVar[str]

    def setup(self) -> None:
        """Load what ``enrich`` needs; called once per worker before the first article."""

    @abstractmethod
    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        """Field name -> value for ``EnrichedArticle``."""
