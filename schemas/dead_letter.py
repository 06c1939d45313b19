"""A record that could not become an article, with what a person needs to act on it.

Dead letters are never silently dropped inputs: each one names the stage that refused
the input, the error, where the input came from and the original bytes, so it can be
inspected, fixed and replayed. Build them with ``DeadLetter.of``, the one place that
bounds the original (a dead letter must always fit its topic) and gives the record its
deterministic ``dead_letter_id``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import ConfigDict, Field

from schemas.article import Record
from schemas.timestamps import UtcDatetime, utc_now

# What a dead letter keeps of an original too large to carry whole: enough to recognise
# it; the rest is re-read from the raw topic at its coordinates while retained.
DEFAULT_MAX_ORIGINAL_BYTES = 64 * 1024


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
    original: bytes | None = Field(None, description="The input as received (or its first bytes), base64 in JSON.")
    dead_letter_id: str | None = Field(
        None,
        description="Deterministic id of this failure: the same input failing at the same stage always gets the "
        "same id, so a re-run that publishes it again can be dropped by consumers keyed on it.",
    )
    original_size: int | None = Field(None, ge=0, description="Size in bytes of the whole original.")
    original_sha256: str | None = Field(None, description="Hex SHA-256 of the whole original.")
    original_truncated: bool = Field(
        False, description="True when `original` holds only a prefix; re-read the rest at topic/partition/offset."
    )

    @classmethod
    def of(
        cls,
        *,
        stage: str,
        error_type: str,
        error: str,
        original: bytes | None = None,
        max_original_bytes: int = DEFAULT_MAX_ORIGINAL_BYTES,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        key: str | None = None,
        source_name: str | None = None,
        source_url: str | None = None,
        occurred_at: datetime | None = None,
    ) -> DeadLetter:
        """The dead letter for one failed input: the original kept whole when it fits in
        ``max_original_bytes``, else a prefix with its size and digest."""
        if max_original_bytes < 0:
            raise ValueError(f"max_original_bytes must not be negative, not {max_original_bytes}")
        digest = hashlib.sha256(original).hexdigest() if original is not None else None
        truncated = original is not None and len(original) > max_original_bytes
        return cls(
            stage=stage,
            error_type=error_type,
            error=error,
            occurred_at=occurred_at or utc_now(),
            source_name=source_name,
            source_url=source_url,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            original=original[:max_original_bytes] if truncated and original is not None else original,
            original_size=len(original) if original is not None else None,
            original_sha256=digest,
            original_truncated=truncated,
            dead_letter_id=dead_letter_id(
                stage=stage,
                topic=topic,
                partition=partition,
                offset=offset,
                identity=source_url or key or digest or error,
            ),
        )


def dead_letter_id(
    *, stage: str, topic: str | None, partition: int | None, offset: int | None, identity: str | None
) -> str:
    """Coordinates when the input has them (a re-read of the same record gives the same
    id); otherwise what names the input (its URL, key or digest)."""
    if topic is not None and partition is not None and offset is not None:
        basis = f"{stage}\x00{topic}\x00{partition}\x00{offset}"
    else:
        basis = f"{stage}\x00{identity or ''}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


# The least of each text field kept when a dead letter must shrink to fit its topic.
_MIN_TEXT_CHARS = 512


def fit_dead_letter(dead_letter: DeadLetter, max_record_bytes: int) -> DeadLetter:
    """``dead_letter``, trimmed until its encoded record is at most ``max_record_bytes``.

    The original's prefix is shortened first (its ``original_size``, ``original_sha256``
    and coordinates stay, so it can still be recognised and re-read); then the error,
    key and URL texts, which are only that long when an input put them there.
    """
    from schemas.codec import encode  # codec imports the article models; keep this module's imports light

    fitted = dead_letter
    for _ in range(4):
        over = len(encode(fitted)) - max_record_bytes
        if over <= 0:
            return fitted
        update: dict[str, object] = {}
        keep = 0
        if fitted.original:
            # base64 turns every 3 bytes into 4: cut a little more than the overshoot needs.
            keep = max(0, len(fitted.original) - (over * 3 // 4 + 4))
            update = {"original": fitted.original[:keep], "original_truncated": True}
        if keep == 0:
            for name in ("error", "key", "source_url"):
                text = (getattr(fitted, name) or "").removesuffix("…")
                if len(text) > _MIN_TEXT_CHARS:
                    # Cutting `over` characters frees at least `over` bytes; the ellipsis takes 3.
                    update[name] = text[: max(_MIN_TEXT_CHARS, len(text) - over - 3)] + "…"
        if not update:
            break
        fitted = fitted.model_copy(update=update)
    if len(encode(fitted)) > max_record_bytes:
        raise ValueError(
            f"a dead letter cannot be made to fit {max_record_bytes} bytes; raise limits.max_dead_letter_bytes"
        )
    return fitted
