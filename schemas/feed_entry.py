"""A candidate article found in a feed or sitemap, before its page is fetched.

Feed connectors emit one ``FeedEntry`` per item, entry or ``<url>`` they find; the ingest
loop decides which to fetch (new ``canonical_url``, newer ``updated_at``) and turns each
fetched page into a ``CleanedArticle``. What the feed said is kept apart from what the page
will say: titles and dates here are the feed's, and ``provenance`` names the element each
field was read from, so a wrong value can be traced to the document that gave it.

This module must never guess: a field the document does not give is ``None`` (an undated
entry is not stamped with the time it was seen).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator

from schemas.article import _LANGUAGE, Record
from schemas.identity import article_id_for_url, canonicalize_url
from schemas.timestamps import UtcDatetime


class FeedKind(StrEnum):
    """The document format an entry was found in."""

    RSS = "rss"
    ATOM = "atom"
    RDF = "rdf"
    JSON_FEED = "json_feed"
    SITEMAP = "sitemap"
    NEWS_SITEMAP = "news_sitemap"
    # No document: the entry is a ``page`` source of sources.yaml, one article page itself.
    PAGE = "page"


class FeedEntry(Record):
    canonical_url: str = Field(description="The article's URL, resolved and canonicalized; what it is keyed by.")
    url: str = Field(min_length=1, description="The entry's link exactly as the document gives it (may be relative).")
    entry_id: str | None = Field(None, description="RSS guid, Atom id or JSON Feed id, verbatim.")
    title: str | None = Field(None, description="Plain text: tags stripped, entities decoded.")
    summary: str | None = Field(None, description="Plain text of the feed's summary or description.")
    authors: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    published_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    language: str | None = Field(None, pattern=_LANGUAGE, description="Declared by the entry or its feed.")
    feed_url: str = Field(min_length=1, description="URL of the feed or sitemap document the entry came from.")
    feed_title: str | None = None
    source_name: str = Field(min_length=1, description="The configured source that fetched the document.")
    found_in: FeedKind
    provenance: dict[str, str] = Field(
        default_factory=dict,
        description="Field name -> the element or rule it came from, e.g. 'canonical_url': 'feedburner:origLink'.",
    )

    @field_validator("canonical_url")
    @classmethod
    def _is_canonical(cls, value: str) -> str:
        # Keys must be stable: an entry whose URL is not already canonical would get a
        # different article id here than after the page fetch.
        if canonicalize_url(value) != value:
            raise ValueError(f"not in canonical form (expected {canonicalize_url(value)!r})")
        return value

    @property
    def article_id(self) -> str:
        return article_id_for_url(self.canonical_url)
