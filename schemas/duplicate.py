"""The record the pipeline publishes for an article it recognised as a copy of another."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.article import Record, SourceRef
from schemas.timestamps import UtcDatetime


class DuplicateLayer(StrEnum):
    ARTICLE_ID = "article_id"
    EXACT_CONTENT = "exact_content"
    NEAR_DUPLICATE = "near_duplicate"
    SUPERSEDED_VERSION = "superseded_version"


class DuplicateNotice(Record):
    article_id: str
    duplicate_of: str = Field(
        description="article_id of the earliest copy of this article known when it was decided. That copy may "
        "itself be a duplicate: follow duplicate_of until an article that was kept (chains are short)."
    )
    layer: DuplicateLayer
    similarity: float = Field(ge=0.0, le=1.0)
    canonical_url: str | None = None
    source: SourceRef
    detected_at: UtcDatetime
    story_id: str | None = Field(None, description="The story of the original this copies.")
    was_original: bool = Field(
        False,
        description="True when this article had already been published as an original and an earlier copy "
        "arrived later: consumers should now treat duplicate_of as the original.",
    )
