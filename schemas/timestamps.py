"""The one timestamp type of the contract: timezone-aware, stored and emitted in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive time is ambiguous: guessing a zone here would silently shift articles.
        raise ValueError("timestamp has no timezone; send an ISO 8601 time with an offset, e.g. 'Z'")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


def utc_now() -> datetime:
    return datetime.now(UTC)
