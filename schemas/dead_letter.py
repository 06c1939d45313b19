"""A record that could not become an article, with what a person needs to act on it.

Dead letters are never silently dropped inputs: each one names the stage that refused
the input, the error, where the input came from and the original bytes, so it can be
inspected, fixed and replayed.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from schemas.article import Record
from schemas.timestamps import UtcDatetime


class DeadLetter(Record):
    # Raw bytes in Python, base64 text in JSON: the original may not be valid UTF-8.
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    stage: str = Field(description="Where it failed, e.g. 'replay', 'decode', 'fetch'.")
    error_type: str = Field(description="A short machine-readable class, e.g. 'validation'.")
    error: str = Field(description="Readable reason: which field or limit, and what to change.")
    occurred_at: UtcDatetime
    source_name: str | None = None
    source_url: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    original: bytes | None = Field(None, description="The input as received, base64 in JSON.")
