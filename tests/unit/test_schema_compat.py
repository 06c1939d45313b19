"""The published contract only changes compatibly, unless the version is bumped with a changelog entry."""

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import create_model

from schemas import SCHEMA_VERSION, CleanedArticle
from schemas.article import Record
from schemas.compat import breaking_changes
from schemas.export import json_schema_documents

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _released() -> tuple[int, dict[str, dict[str, Any]]]:
    versions = sorted(int(p.name[1:]) for p in (SCHEMAS / "released").glob("v*"))
    assert versions, "schemas/released/ holds the last released contract"
    latest = versions[-1]
    directory = SCHEMAS / "released" / f"v{latest}"
    return latest, {p.name: json.loads(p.read_text()) for p in directory.glob("*.schema.json")}


def test_current_models_are_compatible_with_the_last_release_or_bumped() -> None:
    released_version, released = _released()
    current = {name: json.loads(text) for name, text in json_schema_documents().items()}
    assert set(released) <= set(current), f"published schemas withdrawn: {set(released) - set(current)}"
    problems = {name: breaking_changes(released[name], current[name]) for name in released}
    problems = {name: found for name, found in problems.items() if found}
    if SCHEMA_VERSION == released_version:
        assert not problems, f"breaking changes without a SCHEMA_VERSION bump: {problems}"
    else:
        assert SCHEMA_VERSION == released_version + 1
        assert f"## v{SCHEMA_VERSION}" in (SCHEMAS / "CHANGELOG.md").read_text(), "a bump needs a changelog entry"


# The same record with its title field deleted, as a careless refactor would leave it.
_KEPT_FIELDS: dict[str, Any] = {
    name: (f.annotation, f)
    for name, f in CleanedArticle.model_fields.items()
    if name not in ("title", "schema_version")
}
_TitleRemoved = create_model("CleanedArticle", __base__=Record, **_KEPT_FIELDS)


class _BodyRetyped(CleanedArticle):
    body: int  # type: ignore[assignment]  # the incompatible override is what this test is about


class _NewRequiredField(CleanedArticle):
    priority: int


class _AdditiveChange(CleanedArticle):
    priority: int | None = None


def _schema(model: type[Record]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (_TitleRemoved, "title: field removed"),
        (_BodyRetyped, "body: type narrowed from ['string'] to ['integer']"),
        (_NewRequiredField, "priority: field is newly required"),
    ],
)
def test_a_breaking_model_change_is_caught(model: type[Record], expected: str) -> None:
    assert expected in breaking_changes(_schema(CleanedArticle), _schema(model))


def test_an_additive_change_passes() -> None:
    assert breaking_changes(_schema(CleanedArticle), _schema(_AdditiveChange)) == []


def test_withdrawing_an_enum_value_is_breaking() -> None:
    old = {"type": "object", "properties": {"kind": {"enum": ["seed", "feed"], "type": "string"}}}
    new = {"type": "object", "properties": {"kind": {"enum": ["feed"], "type": "string"}}}
    assert breaking_changes(old, new) == ["kind: enum values withdrawn: ['seed']"]
    assert breaking_changes(new, old) == []
