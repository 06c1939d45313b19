"""Countries an article is about: places, country names and demonyms mapped to ISO 3166-1 alpha-2.

Uses the installed gazetteer (``gazetteer.PlaceGazetteer``), built once per worker. It
must never guess a code for a name the gazetteer does not hold.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pipeline.enrichers.base import Enricher, worker_resource
from pipeline.enrichers.gazetteer import PlaceGazetteer
from schemas import CleanedArticle


class CountryEnricher(Enricher):
    name = "countries"

    def __init__(self, max_countries: int = 10) -> None:
        if max_countries < 1:
            raise ValueError("max_countries must be positive")
        self._max_countries = max_countries

    @worker_resource
    def _gazetteer(self) -> PlaceGazetteer:
        return PlaceGazetteer.load()

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        counts = Counter(match.country_code for match in self._gazetteer.find(f"{article.title}\n\n{article.body}"))
        # Counter keeps first-seen order among equals, so ties go to the country named first.
        return {"country_codes": [code for code, _ in counts.most_common(self._max_countries)]}
