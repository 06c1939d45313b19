"""The record the pipeline publishes for an article it recognised as a copy of another."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.article import Record, SourceRef
from schemas.timestamps import UtcDatetime


class DuplicateLayer(StrEnum):
    ARTICLE_ID = "article_id"
    EXACT_CONTENT = "exact_content"


class DuplicateNotice(Record):
    article_id: str
    duplicate_of: str = Field(description="article_id of the original that was kept.")
    layer: DuplicateLayer
    similarity: float = Field(ge=0.0, le=1.0)
    canonical_url: str | None = None
    source: SourceRef
    detected_at: UtcDatetime
