"""The article as it travels: cleaned by a connector, then enriched by the pipeline.

``CleanedArticle`` is what connectors publish on the raw topic. ``EnrichedArticle`` is
what the pipeline emits on the enriched topic and writes to sinks; it carries every
cleaned field unchanged plus what the enrichers added. Adding an optional field is a
compatible change; removing or retyping one needs a ``SCHEMA_VERSION`` bump.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.timestamps import UtcDatetime

SCHEMA_VERSION = 1

_ARTICLE_ID = r"^[a-z]+-[0-9A-Za-z_-]{1,64}$"
_LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
_COUNTRY = r"^[A-Z]{2}$"
CountryCode = Annotated[str, Field(pattern=_COUNTRY, description="ISO 3166-1 alpha-2 code.")]


class Record(BaseModel):
    """Base of every published record: immutable, strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    schema_version: int = Field(SCHEMA_VERSION, ge=1, description="Contract version of this record.")


class SourceKind(StrEnum):
    SEED = "seed"
    FEED = "feed"
    SITEMAP = "sitemap"
    PAGE = "page"


class SourceRef(BaseModel):
    """Where an article came from: which configured source, and which feed/file within it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SourceKind
    name: str = Field(min_length=1, description="The source's configured name, or the seed file name.")
    url: str | None = Field(None, description="Feed, sitemap or page URL the article was found through.")


class FeedItem(BaseModel):
    """The feed or sitemap entry an article was found through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feed_url: str
    feed_title: str | None = None
    entry_id: str | None = Field(None, description="RSS guid, Atom id or JSON Feed id.")
    title: str | None = None
    categories: list[str] = Field(default_factory=list)
    published_at: UtcDatetime | None = None


class CleanedArticle(Record):
    article_id: str = Field(pattern=_ARTICLE_ID, description="Stable id: url-<hash> or seed-<seed id>.")
    canonical_url: str | None = None
    title: str = Field(min_length=1)
    body: str = Field(min_length=1, description="Clean text; paragraphs separated by one blank line.")
    summary: str | None = None
    authors: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    language: str | None = Field(None, pattern=_LANGUAGE, description="Language declared by the source.")
    published_at: UtcDatetime | None = None
    fetched_at: UtcDatetime
    source: SourceRef
    image_url: str | None = None
    feed_item: FeedItem | None = Field(None, description="What the feed said of this article, kept beside the page.")
    field_sources: dict[str, str] = Field(
        default_factory=dict, description="Field name -> where its value came from, e.g. 'title': 'page og:title'."
    )
    flags: list[str] = Field(
        default_factory=list, description="Doubts about the record, e.g. 'feed_and_page_dates_disagree'."
    )

    @field_validator("title", "body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain non-whitespace text")
        return value

    @property
    def paragraphs(self) -> list[str]:
        return [p for p in self.body.split("\n\n") if p.strip()]


class LanguageGuess(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=_LANGUAGE, description="ISO 639-1 code where one exists.")
    confidence: float = Field(ge=0.0, le=1.0)


class EnrichmentFailure(BaseModel):
    """An enricher that failed on this article; the article still flows on without its fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enricher: str
    error: str


class EntityKind(StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"
    PLACE = "place"


class NamedEntity(BaseModel):
    """A person, organisation or place named in the article, as first written there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=200)
    kind: EntityKind
    mentions: int = Field(1, ge=1, description="How often the name (or a shorter form of it) occurs.")


class Dateline(BaseModel):
    """The place an article was filed from, as its opening dateline gives it ("BERLIN —")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    place: str = Field(min_length=1, max_length=100)
    country_code: str | None = Field(None, pattern=_COUNTRY, description="ISO 3166-1 alpha-2, when known.")


class EnrichedArticle(CleanedArticle):
    enriched_at: UtcDatetime
    content_fingerprint: str = Field(description="sha256 of the normalised body; equal bodies, equal prints.")
    word_count: int | None = Field(None, ge=0)
    reading_time_seconds: int | None = Field(None, ge=0)
    detected_language: LanguageGuess | None = None
    entities: list[NamedEntity] = Field(
        default_factory=list, description="People, organisations and places named, most mentioned first."
    )
    keywords: list[str] = Field(default_factory=list, description="Key phrases, most characteristic first.")
    extractive_summary: list[str] = Field(
        default_factory=list, description="A few of the article's own sentences that best cover it, in article order."
    )
    country_codes: list[CountryCode] = Field(
        default_factory=list,
        description="ISO 3166-1 alpha-2 codes of the countries whose places, names or demonyms are mentioned, "
        "most mentioned first.",
    )
    dateline: Dateline | None = None
    enrichment_failures: list[EnrichmentFailure] = Field(default_factory=list)
    version: int | None = Field(
        None, ge=1, description="1 for the first body seen under this article id, +1 for each changed body."
    )
    updated_at: UtcDatetime | None = Field(
        None, description="When the body last changed (the fetch time of this version); unset for version 1."
    )
    story_id: str | None = Field(
        None, description="Shared by articles about the same event (looser than duplicates); group by it."
    )
    copies_seen: int | None = Field(
        None, ge=0, description="Copies of this article dropped as duplicates when it was published."
    )

    @property
    def effective_language(self) -> str | None:
        """The language to file the article under: the detected one, else the declared one.

        Detection reads the text itself; a declaration is often the site's default and
        wrong for its foreign-language pages. A plain property, not a field: it is derived,
        so it is not part of the published record.
        """
        return self.detected_language.code if self.detected_language else self.language
