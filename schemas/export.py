"""JSON Schema documents for non-Python consumers, generated from the models.

The committed copies in ``schemas/json/`` are the published contract; CI checks that
they match what these models generate.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.article import CleanedArticle, EnrichedArticle
from schemas.dead_letter import DeadLetter
from schemas.duplicate import DuplicateNotice
from schemas.feed_entry import FeedEntry

PUBLISHED_MODELS: dict[str, type[BaseModel]] = {
    "cleaned-article": CleanedArticle,
    "enriched-article": EnrichedArticle,
    "duplicate-notice": DuplicateNotice,
    "dead-letter": DeadLetter,
    "feed-entry": FeedEntry,
}
COMMITTED_DIR = Path(__file__).parent / "json"


def json_schema_documents() -> dict[str, str]:
    """File name -> JSON text, in a stable form so that diffs show real changes only."""
    documents = {}
    for name, model in PUBLISHED_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://newswire.invalid/schemas/{name}.schema.json"
        documents[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return documents


def write_json_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in json_schema_documents().items():
        path = directory / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
