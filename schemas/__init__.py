"""newswire's published contract: the models that cross every boundary, and their codecs.

Connectors, the pipeline and downstream consumers exchange these models, encoded as JSON
on Kafka. This package imports nothing else of newswire, so a consumer can depend on it
alone. The JSON Schema files under ``schemas/json/`` are generated from these models.
"""

from schemas.article import (
    SCHEMA_VERSION,
    CleanedArticle,
    EnrichedArticle,
    EnrichmentFailure,
    FeedItem,
    LanguageGuess,
    SourceKind,
    SourceRef,
)
from schemas.codec import RecordDecodeError, decode, encode, record_headers
from schemas.dead_letter import DeadLetter
from schemas.duplicate import DuplicateLayer, DuplicateNotice
from schemas.identity import article_id_for_seed, article_id_for_url, canonicalize_url

__all__ = [
    "SCHEMA_VERSION",
    "CleanedArticle",
    "DeadLetter",
    "DuplicateLayer",
    "DuplicateNotice",
    "EnrichedArticle",
    "EnrichmentFailure",
    "FeedItem",
    "LanguageGuess",
    "RecordDecodeError",
    "SourceKind",
    "SourceRef",
    "article_id_for_seed",
    "article_id_for_url",
    "canonicalize_url",
    "decode",
    "encode",
    "record_headers",
]
