"""The whole pipeline, wired from its stages: read -> decode -> enrich -> dedup -> write.

``build_pipeline`` takes the source as a PTransform so that the same graph runs over a
bounded micro-batch of Kafka offsets, an unbounded Kafka read on a streaming runner, or
``beam.Create`` in a test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import FixedWindows

from pipeline import metering
from pipeline.decode import DEAD_LETTERS, DecodeArticles
from pipeline.dedup import DUPLICATES, ORIGINALS, Deduplicate
from pipeline.dedup_decide import DedupConfig
from pipeline.enrich import Enrich
from pipeline.enrichers.base import Enricher
from pipeline.kafka_io import KafkaMessage, WriteToKafka
from pipeline.sinks.base import Sink, WriteToSink
from schemas import DeadLetter, DuplicateNotice, EnrichedArticle, encode, record_headers


@dataclass(frozen=True)
class OutputTopics:
    enriched: str
    duplicates: str
    dead_letter: str


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the graph needs, as plain picklable values (no settings lookups inside)."""

    producer_config: Mapping[str, Any]
    topics: OutputTopics
    dedup: DedupConfig
    max_record_bytes: int
    enrichers: Sequence[Enricher] = field(default_factory=list)
    sinks: Sequence[Sink] = field(default_factory=list)
    sink_batch_size: int = 500
    # Streaming runners need finite windows before GroupByKey; bounded batches do not.
    streaming_window_s: float | None = None


def article_message(article: EnrichedArticle) -> KafkaMessage:
    return KafkaMessage(key=article.article_id.encode(), value=encode(article), headers=tuple(record_headers(article)))


def duplicate_message(duplicate: DuplicateNotice) -> KafkaMessage:
    return KafkaMessage(
        key=duplicate.article_id.encode(), value=encode(duplicate), headers=tuple(record_headers(duplicate))
    )


def dead_letter_message(dead_letter: DeadLetter) -> KafkaMessage:
    key = dead_letter.key.encode() if dead_letter.key else None
    return KafkaMessage(key=key, value=encode(dead_letter), headers=tuple(record_headers(dead_letter)))


def build_pipeline(pipeline: beam.Pipeline, source: beam.PTransform, config: PipelineConfig) -> None:
    records = pipeline | "Read" >> source
    if config.streaming_window_s:
        records = records | "Window" >> beam.WindowInto(FixedWindows(config.streaming_window_s))
    decoded = records | "Decode" >> DecodeArticles(config.max_record_bytes)
    enriched = decoded.articles | "Enrich" >> Enrich(config.enrichers)
    deduplicated = enriched | "Deduplicate" >> Deduplicate(config.dedup)
    originals = deduplicated[ORIGINALS]
    demoted = (
        deduplicated[DUPLICATES]
        | "Demoted" >> beam.Filter(lambda notice: notice.was_original)
        | "DemotedIds" >> beam.Map(lambda notice: notice.article_id)
    )
    for sink in config.sinks:
        _ = originals | f"WriteTo{sink.name.title()}" >> WriteToSink(sink, config.sink_batch_size)
        if sink.withdraws:
            _ = demoted | f"WithdrawFrom{sink.name.title()}" >> WriteToSink(sink, config.sink_batch_size, withdraw=True)
    _ = originals | "WriteEnriched" >> WriteToKafka(config.producer_config, config.topics.enriched, article_message)
    _ = deduplicated[DUPLICATES] | "WriteDuplicates" >> WriteToKafka(
        config.producer_config, config.topics.duplicates, duplicate_message
    )
    _ = decoded[DEAD_LETTERS] | "WriteDeadLetters" >> WriteToKafka(
        config.producer_config, config.topics.dead_letter, dead_letter_message
    )
    _meter(records, decoded, enriched, deduplicated)


def _meter(records: Any, decoded: Any, enriched: Any, deduplicated: Any) -> None:
    """Counts on side branches (see ``pipeline.metering``): what each stage took in and let out,
    every duplicate notice by layer, every dead letter by stage and type."""
    _ = records | "MeterDecodeIn" >> metering.stage_records("decode", "in")
    _ = decoded.articles | "MeterDecodeOut" >> metering.stage_records("decode", "out")
    _ = decoded.articles | "MeterEnrichIn" >> metering.stage_records("enrich", "in")
    _ = enriched | "MeterEnrichOut" >> metering.stage_records("enrich", "out")
    _ = enriched | "MeterDedupIn" >> metering.stage_records("dedup", "in")
    _ = deduplicated[ORIGINALS] | "MeterDedupOut" >> metering.stage_records("dedup", "out")
    _ = deduplicated[DUPLICATES] | "MeterDuplicates" >> metering.duplicate_notices()
    _ = decoded[DEAD_LETTERS] | "MeterDeadLetters" >> metering.dead_letters()
