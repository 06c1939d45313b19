"""Decode stage: raw Kafka records become validated ``CleanedArticle``s or dead letters.

Beside each article it emits the record's position (``positions`` output), by which the
dead letters of later stages find their coordinates (``pipeline.dead_letters``).
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline import coders, metering
from pipeline.dead_letters import POSITIONS, RecordPosition, position_of
from pipeline.kafka_io import KafkaRecord
from schemas import CleanedArticle, DeadLetter, RecordDecodeError, decode
from schemas.dead_letter import DEFAULT_MAX_ORIGINAL_BYTES

DEAD_LETTERS = "dead_letters"

# The positions become a side input, and the dead letters cross a Flatten into their writer.
coders.register([RecordPosition, DeadLetter])


def dead_letter_for(
    record: KafkaRecord,
    *,
    stage: str,
    error_type: str,
    error: str,
    max_original_bytes: int = DEFAULT_MAX_ORIGINAL_BYTES,
) -> DeadLetter:
    return DeadLetter.of(
        max_original_bytes=max_original_bytes,
        stage=stage,
        error_type=error_type,
        error=error,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode("utf-8", "replace") if record.key is not None else None,
        original=record.value,
    )


class _DecodeRecord(beam.DoFn):  # type: ignore[misc]
    def __init__(self, max_record_bytes: int, max_original_bytes: int) -> None:
        self._max_record_bytes = max_record_bytes
        self._max_original_bytes = max_original_bytes
        self._decoded = Metrics.counter("decode", "articles")
        self._rejected = Metrics.counter("decode", "dead_letters")
        self._stage_in = metering.stage_counter("decode", "in")
        self._stage_out = metering.stage_counter("decode", "out")

    def process(self, record: KafkaRecord) -> Iterator[CleanedArticle | beam.pvalue.TaggedOutput]:
        self._stage_in.inc()
        size = len(record.value or b"")
        # Over the raw topic's limit (it came compressed, or through a topic set larger): not
        # decoded, and its dead letter keeps only what the dead-letter topic takes of it,
        # with its size, sha256 and coordinates to re-read the rest from the raw topic.
        if size > self._max_record_bytes:
            self._rejected.inc()
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS,
                dead_letter_for(
                    record,
                    stage="decode",
                    error_type="too_large",
                    error=f"record of {size} bytes is over limits.max_article_bytes={self._max_record_bytes}",
                    max_original_bytes=self._max_original_bytes,
                ),
            )
            return
        try:
            article = decode(record.value, CleanedArticle)
        except RecordDecodeError as error:
            self._rejected.inc()
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTERS,
                dead_letter_for(
                    record,
                    stage="decode",
                    error_type="invalid_record",
                    error=str(error),
                    max_original_bytes=self._max_original_bytes,
                ),
            )
            return
        self._decoded.inc()
        self._stage_out.inc()
        yield beam.pvalue.TaggedOutput(POSITIONS, position_of(record.topic, record.partition, record.offset, article))
        yield article


class DecodeArticles(beam.PTransform):  # type: ignore[misc]
    """KafkaRecord -> CleanedArticle (main output), DeadLetter (``dead_letters`` output) and
    (article id, RecordPosition) (``positions`` output)."""

    def __init__(self, max_record_bytes: int, *, max_original_bytes: int = DEFAULT_MAX_ORIGINAL_BYTES) -> None:
        super().__init__()
        if max_record_bytes < 1:
            raise ValueError("max_record_bytes must be positive")
        if max_original_bytes < 0:
            raise ValueError("max_original_bytes must not be negative")
        self._max_record_bytes = max_record_bytes
        self._max_original_bytes = max_original_bytes

    def expand(self, records: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        decode_records = _DecodeRecord(self._max_record_bytes, self._max_original_bytes)
        return records | beam.ParDo(decode_records).with_output_types(
            CleanedArticle, dead_letters=DeadLetter, positions=tuple[str, RecordPosition]
        ).with_outputs(DEAD_LETTERS, POSITIONS, main="articles")
