"""JSON encoding of contract records for Kafka, and decoding that fails readably.

Decoding never lets a bad record pass as a good one: it raises ``RecordDecodeError``
with a message that names each offending field, which dead-letter records carry.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from schemas.article import SCHEMA_VERSION

CONTENT_TYPE = "application/json"
Model = TypeVar("Model", bound=BaseModel)


class RecordDecodeError(ValueError):
    """The bytes are not a valid record of the expected model."""


def encode(record: BaseModel) -> bytes:
    return record.model_dump_json(exclude_none=False).encode("utf-8")


def decode(data: bytes | None, model: type[Model]) -> Model:
    if data is None:
        raise RecordDecodeError(f"empty record (no value) where a {model.__name__} was expected")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordDecodeError(f"record is not UTF-8 JSON (bad byte at position {error.start})") from None
    try:
        return model.model_validate_json(text)
    except ValidationError as error:
        raise RecordDecodeError(_describe(error, model)) from None


def _describe(error: ValidationError, model: type[BaseModel]) -> str:
    problems = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(record)"
        if item["type"] == "json_invalid":
            return f"record is not valid JSON: {item['msg']}"
        problems.append(f"{location}: {item['msg']}")
    shown = "; ".join(problems[:10])
    more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
    return f"invalid {model.__name__}: {shown}{more}"


def record_headers(record: BaseModel) -> list[tuple[str, bytes]]:
    """Kafka headers that let a consumer route a record before parsing its value."""
    return [
        ("content-type", CONTENT_TYPE.encode()),
        ("schema", type(record).__name__.encode()),
        ("schema-version", str(getattr(record, "schema_version", SCHEMA_VERSION)).encode()),
    ]
