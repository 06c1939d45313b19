"""The dateline place: where an article says it was filed ("TEHRAN, Monday (Reuters) -", "BERLIN —").

Reads only the start of the body (or of its first paragraph). It must never take a
sentence's first words for a dateline: a place counts only when written in capitals or
followed by a news agency in brackets, and only when a dash follows.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.enrichers.base import Enricher, worker_resource
from pipeline.enrichers.gazetteer import PlaceGazetteer
from schemas import CleanedArticle
from schemas.article import Dateline

_DATELINE = re.compile(
    r"""^\s*
    (?P<place>[^\W\d_][^\W\d_.'\u2019 -]*(?:[ .'\u2019-]{1,2}[^\W\d_]+){0,3})   # TEHRAN / NEW YORK / Rio de Janeiro
    (?:\s*,\s*(?P<region>[^,()\n\u2014\u2013-]{1,30}?))?                          # , Iran / , Monday / , Jan. 5
    (?:\s*,\s*[^,()\n\u2014\u2013-]{1,30}?)?
    \s*(?:\((?P<agency>[^()\n]{1,40})\))?                                     # (Reuters)
    \s*\.?\s*(?:--|[-\u2014\u2013])\s  # "-", "--", "\u2014", and EFE's ".-"
    """,
    re.VERBOSE,
)


class DatelineEnricher(Enricher):
    name = "dateline"

    @worker_resource
    def _gazetteer(self) -> PlaceGazetteer:
        return PlaceGazetteer.load()

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        match = _DATELINE.match(article.body[:200])
        if match is None:
            return {"dateline": None}
        place = match.group("place").strip()
        if ". " in place and self._gazetteer.lookup(_display(place)) is None:
            place = place.split(". ")[0]  # "PETROPAVLOVSK. KAZINFORM -": the agency follows a full stop
        letters = [c for c in place if c.isalpha()]
        if not (all(c.isupper() for c in letters) or match.group("agency")):
            return {"dateline": None}
        return {
            "dateline": Dateline(place=_display(place), country_code=self._country_of(place, match.group("region")))
        }

    def _country_of(self, place: str, region: str | None) -> str | None:
        for name in (region, place):
            if not name:
                continue
            for form in (name.strip(), _display(name.strip())):
                found = self._gazetteer.lookup(form)
                if found is not None:
                    return found[0]
        return None


def _display(place: str) -> str:
    """TEHRAN -> Tehran, NEW YORK -> New York; a place already in mixed case stays as written."""
    if not place.isupper():
        return place
    return " ".join(part[:1] + part[1:].lower() for part in place.split(" "))
