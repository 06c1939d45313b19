"""The committed JSON Schemas are the published contract: they must match the models."""

import json
from pathlib import Path

from newswire.cli import main
from schemas.export import COMMITTED_DIR, json_schema_documents


def test_committed_json_schemas_match_the_models() -> None:
    generated = json_schema_documents()
    committed = {p.name: p.read_text(encoding="utf-8") for p in COMMITTED_DIR.glob("*.schema.json")}
    stale = sorted(name for name in generated.keys() | committed.keys() if generated.get(name) != committed.get(name))
    assert not stale, f"schemas/json is out of date for {stale}; run `newswire schema export schemas/json`"


def test_schema_export_command_writes_valid_json(tmp_path: Path) -> None:
    assert main(["schema", "export", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(json_schema_documents())
    cleaned = json.loads((tmp_path / "cleaned-article.schema.json").read_text())
    assert {"article_id", "title", "body", "fetched_at", "source", "schema_version"} <= set(cleaned["required"]) | {
        "schema_version"
    }
    assert cleaned["properties"]["published_at"]["anyOf"][0]["format"] == "date-time"
